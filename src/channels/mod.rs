//! Channel adapters: each turns a real protocol (SMTP and inbound-parse webhooks for email, SMS
//! provider webhooks, the web chat) into conversation commands for the engine, and contributes
//! its HTTP routes to the listener.

pub mod email;
pub mod sms;
