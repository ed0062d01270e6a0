//! Ctrl-C and SIGTERM while tracer attaches: noted by a signal handler (hence the global),
//! then acted upon at the setup's next step or when the session starts.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::TracerError;

/// Set by a SIGINT or SIGTERM that arrived before the session's own signal handling started.
static INTERRUPTED_DURING_SETUP: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_signal: libc::c_int) {
    INTERRUPTED_DURING_SETUP.store(true, Ordering::SeqCst);
}

/// From here until the session starts, Ctrl-C or SIGTERM does not kill tracer halfway through
/// attaching: it is noted, and [`setup_interrupted`] stops the setup at its next step, with every
/// probe placed so far removed as its descriptors close.
pub fn catch_interrupts_during_setup() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe); a zeroed sigaction
        // with a handler and an empty mask is valid.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note_interrupt as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Fails if Ctrl-C or SIGTERM arrived during the setup.
pub fn setup_interrupted() -> Result<(), TracerError> {
    match INTERRUPTED_DURING_SETUP.load(Ordering::SeqCst) {
        true => Err(TracerError::Interrupted),
        false => Ok(()),
    }
}

/// Whether Ctrl-C or SIGTERM arrived during the setup.
pub(super) fn arrived_during_setup() -> bool {
    INTERRUPTED_DURING_SETUP.load(Ordering::SeqCst)
}
