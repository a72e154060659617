//! Channel adapters: each turns what contacts send on one channel (SMS, email, web chat) into
//! conversations in the engine, and contributes its HTTP routes to the listener.

pub mod sms;
