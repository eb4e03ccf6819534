//! Pure domain types shared by the store, the queue and the RPC layer. No I/O here.

pub mod job;
