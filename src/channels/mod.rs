//! Channel adapters: how contacts reach Guichet other than by phone (web chat, email, SMS).
//! Each adapter normalises its protocol into interactions and conversation messages.

pub mod chat;
