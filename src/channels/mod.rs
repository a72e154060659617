//! Channel adapters: each turns outside traffic (telephony gateways, mail, SMS providers, web
//! chat) into engine commands and reacts to the engine's committed events of its channel.
//!
//! One folder per channel, each with its own configuration section, HTTP routes and state:
//! - [`voice`]: Twilio-style, jambonz-style and generic SIP-server webhooks, IVR execution,
//!   the hold loop and bridging to the agent's device.

pub mod voice;
