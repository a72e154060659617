//! Channel adapters: each turns a real protocol (telephony gateway webhooks for calls, SMTP and
//! inbound-parse webhooks for email, SMS provider webhooks, the web chat over WebSocket) into
//! interactions and conversation messages in the engine, and contributes its HTTP routes to the
//! listener.

pub mod chat;
pub mod email;
pub mod sms;
pub mod voice;
