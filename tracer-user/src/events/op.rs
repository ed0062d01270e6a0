//! What an event says happened, decoded once: [`Op`] has one variant per [`EventKind`], each
//! with its values named, so nothing downstream reinterprets the kernel's kind-specific
//! `object` and `arg` words. [`Fields`] is the flat form the kernel and the recording carry;
//! [`Op::new`] and [`Op::fields`] convert between the two and are each other's inverse for
//! every value an operation keeps.

use tracer_common::{EventKind, SELECT_CASE_SEND};

/// The key of a map operation, as far as the probe records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Key {
    /// Not recorded (generic maps pass a pointer; `clear` has none).
    #[default]
    Unknown,
    /// Integer and pointer keys (`*_fast32`, `*_fast64`, `*_fast64ptr`).
    Integer(u64),
    /// String keys: only the length is recorded, never the contents.
    StringOfLength(u64),
}

/// A channel's buffer, as its channel events record it (to recognise the slots its values go
/// through).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelBuffer {
    pub address: u64,
    /// `cap(ch)`: 0 for an unbuffered channel.
    pub capacity: u64,
    pub element_size: u64,
}

impl ChannelBuffer {
    /// Whether `pointer` is one of its slots (the runtime puts every slot of a buffer of
    /// zero-size elements, and an unbuffered channel's only one, at the buffer's address).
    pub fn holds(&self, pointer: u64) -> bool {
        let bytes = self.capacity.saturating_mul(self.element_size).max(1);
        self.address != 0 && pointer.wrapping_sub(self.address) < bytes
    }
}

/// An event's kind-specific values, flat, as the kernel records them (see
/// `tracer_common::RawEvent`) and the recording writes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    pub object: u64,
    pub arg: u64,
    pub key: Key,
    /// ZF after a compare-and-swap (inlined Lock/TryLock).
    pub zero_flag: bool,
    pub buffer: Option<ChannelBuffer>,
}

/// What was done to a map's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapAccess {
    Assign,
    Delete,
    Clear,
    Read,
    /// The start of a `for range` (a read of the whole map).
    Iterate,
    /// Each further step of a `for range` (a read).
    IterateNext,
}

impl MapAccess {
    pub fn is_write(self) -> bool {
        matches!(self, Self::Assign | Self::Delete | Self::Clear)
    }
}

/// One operation of the traced program, with its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Map {
        access: MapAccess,
        map: u64,
        key: Key,
    },
    MapMade {
        map: u64,
    },
    ChanMade {
        channel: u64,
    },
    Send {
        channel: u64,
        buffer: Option<ChannelBuffer>,
    },
    SendDone,
    Receive {
        channel: u64,
        buffer: Option<ChannelBuffer>,
    },
    /// `received`: the receive's result said a value arrived (false: the channel is closed);
    /// only `chanrecv2` and reflect's receive say (see `plan::catalogue::Meaning`).
    ReceiveDone {
        received: bool,
    },
    Close {
        channel: u64,
    },
    /// A `select` with one case and a default.
    SelectNonBlocking {
        channel: u64,
        buffer: Option<ChannelBuffer>,
    },
    SelectNonBlockingDone {
        selected: bool,
    },
    /// A `select` starts with this many cases.
    SelectEnter {
        cases: u64,
    },
    /// One of its cases (sends come first).
    SelectCase {
        channel: u64,
        index: u64,
        send: bool,
        buffer: Option<ChannelBuffer>,
    },
    /// The case that ran (`cases` for the default) and whether a receive got a value.
    SelectChosen {
        case: u64,
        received: bool,
    },
    /// A value copied into or out of `slot` under a channel's lock (or into the goroutine's
    /// own variable).
    ChanSlot {
        slot: u64,
    },
    /// A value passed through `slot` to or from the parked goroutine `partner`.
    HandOff {
        slot: u64,
        partner: u64,
    },
    GoStatement,
    GoroutineCreate {
        child: u64,
        parent: u64,
    },
    GoroutineExit,
    /// The runtime is about to die with the message at `message` (`len` bytes).
    Fatal {
        message: u64,
        len: u64,
    },
    /// An out-of-line sync function was entered with this first argument (and second).
    SyncEnter {
        object: u64,
        arg: u64,
    },
    /// It returned `result`.
    SyncExit {
        result: u64,
    },
    Lock {
        mutex: u64,
        acquired: bool,
    },
    TryLock {
        mutex: u64,
        acquired: bool,
    },
    Unlock {
        mutex: u64,
    },
    /// `readers` is the reader count this RLock read (or that count plus one, as Go tests it):
    /// negative while a writer holds the lock.
    RLock {
        rw: u64,
        readers: i32,
    },
    RUnlock {
        rw: u64,
    },
    /// A writer's `RWMutex.Lock` past one of its reader checks.
    ReadersChecked {
        rw: u64,
    },
    OnceDo {
        once: u64,
        done: bool,
    },
    OnceDone {
        once: u64,
    },
    WaitGroupDone {
        wait_group: u64,
    },
    /// A value published through `atomic.Value` (its data word).
    AtomicPublish {
        value: u64,
    },
    /// Before a typed atomic's write / after its read.
    AtomicRelease {
        word: u64,
    },
    AtomicAcquire {
        word: u64,
    },
    PoolPut {
        value: u64,
    },
    PoolGet {
        value: u64,
    },
    TimerArm {
        callback: u64,
    },
    TimerFire {
        callback: u64,
    },
    /// The process replaced its program.
    Exec,
}

impl Op {
    /// The operation of `kind` with the values `fields` carry.
    pub fn new(kind: EventKind, fields: Fields) -> Self {
        use EventKind as K;
        let Fields {
            object,
            arg,
            key,
            zero_flag,
            buffer,
        } = fields;
        let map = |access| Self::Map {
            access,
            map: object,
            key,
        };
        match kind {
            K::MapAssign => map(MapAccess::Assign),
            K::MapDelete => map(MapAccess::Delete),
            K::MapClear => map(MapAccess::Clear),
            K::MapRead => map(MapAccess::Read),
            K::MapIterStart => map(MapAccess::Iterate),
            K::MapIterNext => map(MapAccess::IterateNext),
            K::MapMake => Self::MapMade { map: object },
            K::ChanMake => Self::ChanMade { channel: object },
            K::ChanSend => Self::Send {
                channel: object,
                buffer,
            },
            K::ChanSendDone => Self::SendDone,
            K::ChanReceive => Self::Receive {
                channel: object,
                buffer,
            },
            K::ChanReceiveDone => Self::ReceiveDone {
                received: arg & 1 != 0,
            },
            K::ChanClose => Self::Close { channel: object },
            K::SelectNonBlocking => Self::SelectNonBlocking {
                channel: object,
                buffer,
            },
            K::SelectNonBlockingDone => Self::SelectNonBlockingDone {
                selected: arg & 1 != 0,
            },
            K::SelectEnter => Self::SelectEnter { cases: arg },
            K::SelectCase => Self::SelectCase {
                channel: object,
                index: arg & !SELECT_CASE_SEND,
                send: arg & SELECT_CASE_SEND != 0,
                buffer,
            },
            K::SelectChosen => Self::SelectChosen {
                case: object,
                received: arg & 1 != 0,
            },
            K::ChanSlot => Self::ChanSlot { slot: object },
            K::ChanHandOff => Self::HandOff {
                slot: object,
                partner: arg,
            },
            K::GoStatement => Self::GoStatement,
            K::GoroutineCreate => Self::GoroutineCreate {
                child: object,
                parent: arg,
            },
            K::GoroutineExit => Self::GoroutineExit,
            K::Fatal => Self::Fatal {
                message: object,
                len: arg,
            },
            K::SyncEnter => Self::SyncEnter { object, arg },
            K::SyncExit => Self::SyncExit { result: arg },
            K::MutexLock => Self::Lock {
                mutex: object,
                acquired: zero_flag,
            },
            K::MutexTryLock => Self::TryLock {
                mutex: object,
                acquired: zero_flag,
            },
            K::MutexUnlock => Self::Unlock { mutex: object },
            // The XADD's result: a 32-bit reader count.
            K::RwMutexRLock => Self::RLock {
                rw: object,
                readers: arg as u32 as i32,
            },
            K::RwMutexRUnlock => Self::RUnlock { rw: object },
            K::RwMutexReadersChecked => Self::ReadersChecked { rw: object },
            K::OnceDo => Self::OnceDo {
                once: object,
                done: arg != 0,
            },
            K::OnceDone => Self::OnceDone { once: object },
            K::WaitGroupDone => Self::WaitGroupDone { wait_group: object },
            K::AtomicPublish => Self::AtomicPublish { value: object },
            K::AtomicRelease => Self::AtomicRelease { word: object },
            K::AtomicAcquire => Self::AtomicAcquire { word: object },
            K::PoolPut => Self::PoolPut { value: object },
            K::PoolGet => Self::PoolGet { value: object },
            K::TimerArm => Self::TimerArm { callback: object },
            K::TimerFire => Self::TimerFire { callback: object },
            K::Exec => Self::Exec,
        }
    }

    pub fn kind(&self) -> EventKind {
        use EventKind as K;
        match self {
            Self::Map { access, .. } => match access {
                MapAccess::Assign => K::MapAssign,
                MapAccess::Delete => K::MapDelete,
                MapAccess::Clear => K::MapClear,
                MapAccess::Read => K::MapRead,
                MapAccess::Iterate => K::MapIterStart,
                MapAccess::IterateNext => K::MapIterNext,
            },
            Self::MapMade { .. } => K::MapMake,
            Self::ChanMade { .. } => K::ChanMake,
            Self::Send { .. } => K::ChanSend,
            Self::SendDone => K::ChanSendDone,
            Self::Receive { .. } => K::ChanReceive,
            Self::ReceiveDone { .. } => K::ChanReceiveDone,
            Self::Close { .. } => K::ChanClose,
            Self::SelectNonBlocking { .. } => K::SelectNonBlocking,
            Self::SelectNonBlockingDone { .. } => K::SelectNonBlockingDone,
            Self::SelectEnter { .. } => K::SelectEnter,
            Self::SelectCase { .. } => K::SelectCase,
            Self::SelectChosen { .. } => K::SelectChosen,
            Self::ChanSlot { .. } => K::ChanSlot,
            Self::HandOff { .. } => K::ChanHandOff,
            Self::GoStatement => K::GoStatement,
            Self::GoroutineCreate { .. } => K::GoroutineCreate,
            Self::GoroutineExit => K::GoroutineExit,
            Self::Fatal { .. } => K::Fatal,
            Self::SyncEnter { .. } => K::SyncEnter,
            Self::SyncExit { .. } => K::SyncExit,
            Self::Lock { .. } => K::MutexLock,
            Self::TryLock { .. } => K::MutexTryLock,
            Self::Unlock { .. } => K::MutexUnlock,
            Self::RLock { .. } => K::RwMutexRLock,
            Self::RUnlock { .. } => K::RwMutexRUnlock,
            Self::ReadersChecked { .. } => K::RwMutexReadersChecked,
            Self::OnceDo { .. } => K::OnceDo,
            Self::OnceDone { .. } => K::OnceDone,
            Self::WaitGroupDone { .. } => K::WaitGroupDone,
            Self::AtomicPublish { .. } => K::AtomicPublish,
            Self::AtomicRelease { .. } => K::AtomicRelease,
            Self::AtomicAcquire { .. } => K::AtomicAcquire,
            Self::PoolPut { .. } => K::PoolPut,
            Self::PoolGet { .. } => K::PoolGet,
            Self::TimerArm { .. } => K::TimerArm,
            Self::TimerFire { .. } => K::TimerFire,
            Self::Exec => K::Exec,
        }
    }

    /// The flat form of the operation's values (what [`Op::new`] reads back).
    pub fn fields(&self) -> Fields {
        let object = |object| Fields {
            object,
            ..Fields::default()
        };
        let arg = |arg| Fields {
            arg,
            ..Fields::default()
        };
        let channel = |object, buffer| Fields {
            object,
            buffer,
            ..Fields::default()
        };
        let flag = |value: bool| arg(u64::from(value));
        match *self {
            Self::Map { map, key, .. } => Fields {
                object: map,
                key,
                ..Fields::default()
            },
            Self::MapMade { map } => object(map),
            Self::ChanMade { channel }
            | Self::Close { channel }
            | Self::ChanSlot { slot: channel } => object(channel),
            Self::Send { channel: c, buffer }
            | Self::Receive { channel: c, buffer }
            | Self::SelectNonBlocking { channel: c, buffer } => channel(c, buffer),
            Self::ReceiveDone { received: value }
            | Self::SelectNonBlockingDone { selected: value } => flag(value),
            Self::SelectEnter { cases } => arg(cases),
            Self::SelectCase {
                channel,
                index,
                send,
                buffer,
            } => Fields {
                object: channel,
                arg: index | if send { SELECT_CASE_SEND } else { 0 },
                buffer,
                ..Fields::default()
            },
            Self::SelectChosen { case, received } => Fields {
                object: case,
                arg: u64::from(received),
                ..Fields::default()
            },
            Self::HandOff {
                slot: object,
                partner: arg,
            }
            | Self::GoroutineCreate {
                child: object,
                parent: arg,
            }
            | Self::Fatal {
                message: object,
                len: arg,
            }
            | Self::SyncEnter { object, arg } => Fields {
                object,
                arg,
                ..Fields::default()
            },
            Self::SyncExit { result } => arg(result),
            Self::Lock { mutex, acquired } | Self::TryLock { mutex, acquired } => Fields {
                object: mutex,
                zero_flag: acquired,
                ..Fields::default()
            },
            Self::RLock { rw, readers } => Fields {
                object: rw,
                arg: u64::from(readers as u32),
                ..Fields::default()
            },
            Self::OnceDo { once, done } => Fields {
                object: once,
                arg: u64::from(done),
                ..Fields::default()
            },
            Self::Unlock { mutex: word }
            | Self::RUnlock { rw: word }
            | Self::ReadersChecked { rw: word }
            | Self::OnceDone { once: word }
            | Self::WaitGroupDone { wait_group: word }
            | Self::AtomicPublish { value: word }
            | Self::AtomicRelease { word }
            | Self::AtomicAcquire { word }
            | Self::PoolPut { value: word }
            | Self::PoolGet { value: word }
            | Self::TimerArm { callback: word }
            | Self::TimerFire { callback: word } => object(word),
            Self::SendDone | Self::GoStatement | Self::GoroutineExit | Self::Exec => {
                Fields::default()
            }
        }
    }

    /// The map accessed, for an access to a map's contents (what races are about).
    pub fn map_access(&self) -> Option<(u64, MapAccess)> {
        match *self {
            Self::Map { map, access, .. } => Some((map, access)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_operation_and_back() {
        for kind in EventKind::ALL {
            assert_eq!(Op::new(kind, Fields::default()).kind(), kind);
        }
    }

    #[test]
    fn the_values_an_operation_keeps_survive_the_flat_form() {
        let buffer = Some(ChannelBuffer {
            address: 0xc000_2000,
            capacity: 4,
            element_size: 8,
        });
        let samples = [
            Fields {
                object: 0xc000_1000,
                arg: 1,
                key: Key::Integer(7),
                zero_flag: true,
                buffer,
            },
            Fields {
                object: 3,
                arg: SELECT_CASE_SEND | 2,
                key: Key::StringOfLength(5),
                zero_flag: false,
                buffer: None,
            },
            Fields {
                object: 0xc000_3000,
                arg: u64::from(-2_i32 as u32),
                ..Fields::default()
            },
        ];
        for kind in EventKind::ALL {
            for fields in samples {
                let op = Op::new(kind, fields);
                assert_eq!(Op::new(kind, op.fields()), op, "{kind:?}");
            }
        }
        let rlock = Op::new(EventKind::RwMutexRLock, samples[2]);
        assert_eq!(
            rlock,
            Op::RLock {
                rw: 0xc000_3000,
                readers: -2
            }
        );
        let case = Op::new(EventKind::SelectCase, samples[1]);
        assert!(matches!(
            case,
            Op::SelectCase {
                index: 2,
                send: true,
                ..
            }
        ));
    }
}
