//! State objects end to end: `States` served on loopback, calls delivered over real HTTP to a
//! real app that uses the object's storage from inside its calls.

mod calls;
mod storage;
mod support;
