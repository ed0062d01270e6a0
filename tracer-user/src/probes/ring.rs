//! The events ring buffer, read in place and in batches.
//!
//! The kernel's producers read the consumer position on every reservation, and aya's `RingBuf`
//! publishes it after every record: on a service traced all the time, each publication moved
//! that cache line from tracer's CPU to the next producer's. Here a drain hands out each
//! complete record as a slice of the mapped pages, without a copy, and publishes the consumer
//! position once, after the batch (bench/service traced all the time: +2.5% throughput, six
//! alternated pairs; docs/performance.md).
//!
//! The layout is the kernel's `BPF_MAP_TYPE_RINGBUF` memory-mapping interface
//! (kernel/bpf/ringbuf.c): the first page, writable, holds the consumer position; from the
//! second, read-only, the producer position's page, then the data pages mapped twice in a row,
//! so that a record that wraps around the end is contiguous. Each record starts with an 8-byte
//! header whose first word is its length with two flags: busy (still being written) and
//! discarded. Records are 8-byte aligned.

use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    sync::atomic::{AtomicU32, AtomicUsize, Ordering},
};

use aya::maps::MapData;
use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::error::TracerError;

/// `BPF_RINGBUF_BUSY_BIT`: the producer has reserved the record and not submitted it yet.
const BUSY: u32 = 1 << 31;
/// `BPF_RINGBUF_DISCARD_BIT`: the producer gave the record up.
const DISCARD: u32 = 1 << 30;
/// `BPF_RINGBUF_HDR_SZ`.
const HEADER: usize = 8;

pub struct EventRing {
    /// The consumer position's page.
    consumer: MmapMut,
    /// The producer position's page, then the data twice.
    producer: Mmap,
    page: usize,
    /// Data size - 1 (a power of two).
    mask: usize,
    /// The next record to read (published to the kernel after each batch).
    position: usize,
    /// Keeps the map alive as long as its pages are mapped.
    _map: MapData,
}

impl EventRing {
    /// Maps the ring buffer `map`, of `size` bytes of data (its `max_entries`, a power of two
    /// and a multiple of the page size).
    pub fn new(map: MapData, size: u32) -> Result<Self, TracerError> {
        // SAFETY: no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| anyhow::anyhow!("no page size"))?;
        let size = size as usize;
        if !size.is_power_of_two() || !size.is_multiple_of(page) {
            return Err(
                anyhow::anyhow!("ring buffer of {size} bytes: not a power of two pages").into(),
            );
        }
        let fd = map.fd().as_fd().as_raw_fd();
        let mapping =
            |what| move |error| anyhow::anyhow!("mapping the ring buffer's {what}: {error}");
        // SAFETY: the kernel's mapping of a ring buffer map; the consumer page is the only one it
        // lets userspace write, and only the consumer position is written.
        let consumer = unsafe { MmapOptions::new().len(page).map_mut(fd) }
            .map_err(mapping("consumer page"))?;
        // SAFETY: read-only, shared with the producers, read only through atomics and after
        // the producer position says the bytes are written.
        let producer = unsafe {
            MmapOptions::new()
                .offset(page as u64)
                .len(page + 2 * size)
                .map(fd)
        }
        .map_err(mapping("data pages"))?;
        let position = consumer_position(&consumer).load(Ordering::Acquire);
        Ok(Self {
            consumer,
            producer,
            page,
            mask: size - 1,
            position,
            _map: map,
        })
    }

    /// Hands `handle` each complete record, oldest first, at most `max` of them, then tells the
    /// kernel their space is free. Returns whether records may be left (`max` reached). A
    /// record still being written ends the batch: the ones after it wait for the next drain,
    /// so that records are handed out in the order they were reserved.
    pub fn drain(&mut self, max: usize, mut handle: impl FnMut(&[u8])) -> bool {
        // SAFETY: the producer position is the first word of the producer page, aligned.
        let produced =
            unsafe { &*self.producer.as_ptr().cast::<AtomicUsize>() }.load(Ordering::Acquire);
        let data = &self.producer[self.page..];
        let mut position = self.position;
        let mut handled = 0;
        while position != produced && handled < max {
            let offset = position & self.mask;
            // SAFETY: `offset` is 8-byte aligned and within the first copy of the data; the
            // header is written by the producer with an atomic exchange.
            let header =
                unsafe { &*data.as_ptr().add(offset).cast::<AtomicU32>() }.load(Ordering::Acquire);
            if header & BUSY != 0 {
                break;
            }
            let length = (header & !(BUSY | DISCARD)) as usize;
            // Within the double mapping (the kernel makes no record larger than the data).
            let Some(record) = data.get(offset + HEADER..offset + HEADER + length) else {
                break;
            };
            if header & DISCARD == 0 {
                handle(record);
            }
            position += (HEADER + length).next_multiple_of(8);
            handled += 1;
        }
        if position != self.position {
            self.position = position;
            // Pairs with the producers' acquire load before they reuse the space.
            consumer_position(&self.consumer).store(position, Ordering::Release);
        }
        handled == max
    }
}

fn consumer_position(page: &MmapMut) -> &AtomicUsize {
    // SAFETY: the consumer position is the first word of its page, aligned.
    unsafe { &*page.as_ptr().cast::<AtomicUsize>() }
}
