//! The happens-before engine: turns a stream of synchronisation and map events into race
//! reports. Pure logic, no I/O.
