//! The web chat's WebSocket protocol: JSON text frames, one object per frame, told apart by
//! their `type` field. Documented in `docs/channels.md` (Web chat).

use serde::{Deserialize, Serialize};

/// A frame the visitor's browser sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Opens a chat session (the interaction is created with the first message).
    Start {
        /// The visitor's name as shown to the agent.
        name: String,
        /// The visitor's email address, if given (used as the contact and for the transcript).
        #[serde(default)]
        email: Option<String>,
        /// A queue offered to visitors (`[chat] default_queue` or one of `[chat.topics]`).
        #[serde(default)]
        queue: Option<String>,
        /// A topic of `[chat.topics]`, mapped to its queue.
        #[serde(default)]
        topic: Option<String>,
        /// `fr` or `en`.
        #[serde(default)]
        language: Option<String>,
    },
    /// Resumes a session after a reconnection, within the grace period.
    Resume {
        /// The session id given by `started`.
        session: String,
        /// The resume token given by `started`.
        token: String,
        /// The journal sequence number (`seq`) of the last line the widget shows: only the
        /// lines after it are sent back (none twice). Absent or 0: the whole conversation
        /// (a page that reloaded shows nothing yet).
        #[serde(default)]
        after: Option<u64>,
    },
    /// A line written by the visitor.
    Message {
        /// The text.
        text: String,
        /// The browser's id for this line: a line sent again with the same id (after a
        /// reconnection) is acknowledged again, not stored twice.
        #[serde(default)]
        client_id: Option<String>,
    },
    /// The visitor started or stopped typing.
    Typing {
        /// Whether the visitor is typing.
        typing: bool,
    },
    /// Asks for the transcript by email when the chat ends.
    Transcript {
        /// The address to send it to.
        email: String,
    },
    /// The visitor ends the chat.
    End,
}

/// One line of a conversation as replayed to the visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatLine {
    /// The journal sequence number of the line (increasing within a chat): the widget
    /// sends the last one it shows with `resume`.
    pub seq: u64,
    /// The message id.
    pub id: String,
    /// `visitor` or `agent`.
    pub from: &'static str,
    /// The writer's display name.
    pub name: String,
    /// The text.
    pub text: String,
    /// When it was stored (Unix milliseconds).
    pub at: u64,
    /// A visitor line's `client_id` (from its `message` frame): a line the widget still
    /// waits the `ack` of is recognised, not shown twice nor sent again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// A frame the server sends to the visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The session is open: keep the token to resume it after a reconnection.
    Started {
        /// The session id.
        session: String,
        /// The secret that resumes the session.
        resume_token: String,
        /// How long a disconnected session is kept, in seconds.
        grace_secs: u64,
    },
    /// The session was resumed: the lines the widget does not show yet.
    Resumed {
        /// The session id.
        session: String,
        /// The agent answering, if one has joined.
        agent: Option<String>,
        /// Every line after the `after` of `resume` (the whole conversation without it),
        /// oldest first.
        history: Vec<ChatLine>,
    },
    /// The chat waits for an agent.
    Queued {
        /// The request's short reference (`K7M2Q-X9D4A`), the same on every channel.
        reference: String,
        /// The reference the citizen is given, as in every other message
        /// ([`crate::channels::citizen::reference`]).
        display_reference: String,
    },
    /// Where the waiting chat stands: sent when its place in line or its expected wait
    /// changes (at most every two seconds), while no agent has it.
    Position {
        /// Its place in line: 1 is next.
        position: usize,
        /// The expected wait in seconds ([`crate::core::Pace`]: the same figure callers
        /// hear), when known.
        expected_wait_secs: Option<u64>,
    },
    /// Nobody can chat now: the queue is closed (outside its opening hours) or no agent is
    /// signed in to it. The widget shows the hours and, when `leave_message`, offers to leave
    /// a message answered by email (`POST /chat/message`).
    Unavailable {
        /// Outside the opening hours (false: open, but nobody signed in).
        closed: bool,
        /// The opening hours, one line per open weekday, in the chat's language (empty: none
        /// configured).
        hours: Vec<String>,
        /// Whether a message can be left to be answered by email.
        leave_message: bool,
    },
    /// A visitor line is stored.
    Ack {
        /// The browser's id for the line.
        client_id: Option<String>,
        /// The message id.
        id: String,
        /// When it was stored (Unix milliseconds).
        at: u64,
    },
    /// An agent joined the chat.
    AgentJoined {
        /// The agent's display name.
        agent: String,
    },
    /// A line from the agent.
    Message {
        /// The journal sequence number of the line: the widget sends the last one it shows
        /// with `resume`, and gets only the lines after it.
        seq: u64,
        /// The message id.
        id: String,
        /// The agent's display name.
        from: String,
        /// The text.
        text: String,
        /// When it was stored (Unix milliseconds).
        at: u64,
    },
    /// The agent started or stopped typing.
    AgentTyping {
        /// Whether the agent is typing.
        typing: bool,
    },
    /// The satisfaction survey, after the chat was completed: the widget shows the question
    /// with a 1-to-5 scale and a comment box, and posts the answer to `url` (form fields
    /// `score`, `comment`); the chat then ends.
    Survey {
        /// The survey's token (also the last segment of `url`).
        token: String,
        /// The question, in the chat's language.
        question: String,
        /// The survey page, where the answer is posted.
        url: String,
    },
    /// The transcript will be sent to this address when the chat ends.
    TranscriptRequested {
        /// The address.
        email: String,
    },
    /// The chat is over; the socket closes next.
    Ended {
        /// `visitor`, `agent`, `abandoned`, `cancelled` or `expired`.
        reason: String,
    },
    /// Something was refused.
    Error {
        /// A stable code (`too_big`, `bad_frame`, `bad_request`, `not_started`, `unknown_session`,
        /// `unavailable`, `refused`, `replaced`).
        code: String,
        /// What to fix, in English.
        text: String,
    },
}

impl ServerFrame {
    /// An `error` frame.
    pub fn error(code: &str, text: impl Into<String>) -> ServerFrame {
        ServerFrame::Error {
            code: code.to_owned(),
            text: text.into(),
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail; keep a valid frame if it ever did.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","code":"internal","text":"frame not encoded: {e}"}}"#)
        })
    }
}
