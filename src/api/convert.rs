//! Translation between the protobuf messages of `guichet.v1` and the core's types, with the
//! validation that makes a bad request a clear `INVALID_ARGUMENT` instead of a surprise (errors
//! become statuses in `status.rs`).

use std::collections::BTreeMap;
use std::str::FromStr;

use tonic::Status;

use crate::core::{
    AgentConfig, AgentId, AgentState, Capacity, Channel, ContactId, Decision, EscalationStep,
    Event, EventKind, InteractionId, InteractionPhase, InteractionSpec, InteractionView, Overflow,
    OverflowAction, PerChannel, QueueConfig, QueueId, Requirement, Rule, Skill, SlaTargets,
    StepAction, Strategy, Timestamp, WorkingDayTargets,
};

use super::proto as pb;

/// Shorthand for an `INVALID_ARGUMENT` status.
pub fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// Milliseconds since the epoch as a protobuf `int64`.
pub fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

fn opt_ms(t: Option<Timestamp>) -> i64 {
    t.map_or(0, ms)
}

/// A required identifier field: trimmed, non-empty.
pub fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(format!("{field} is required")));
    }
    if value.len() > 256 {
        return Err(invalid(format!("{field} is longer than 256 bytes")));
    }
    Ok(value)
}

/// Parses an interaction id (a ULID).
pub fn interaction_id(field: &str, value: &str) -> Result<InteractionId, Status> {
    let value = required(field, value)?;
    InteractionId::from_str(value).map_err(|_| {
        invalid(format!(
            "{field} is not an interaction id (26 characters of Crockford base32, as returned \
             by Create)"
        ))
    })
}

/// The core channel of a protobuf channel.
pub fn channel(field: &str, value: i32) -> Result<Channel, Status> {
    match pb::Channel::try_from(value) {
        Ok(pb::Channel::Voice) => Ok(Channel::Voice),
        Ok(pb::Channel::Email) => Ok(Channel::Email),
        Ok(pb::Channel::Sms) => Ok(Channel::Sms),
        Ok(pb::Channel::Chat) => Ok(Channel::Chat),
        _ => Err(invalid(format!(
            "{field} must be CHANNEL_VOICE, CHANNEL_EMAIL, CHANNEL_SMS or CHANNEL_CHAT"
        ))),
    }
}

/// The protobuf channel of a core channel.
pub fn channel_pb(channel: Channel) -> i32 {
    match channel {
        Channel::Voice => pb::Channel::Voice as i32,
        Channel::Email => pb::Channel::Email as i32,
        Channel::Sms => pb::Channel::Sms as i32,
        Channel::Chat => pb::Channel::Chat as i32,
    }
}

fn level(field: &str, value: u32) -> Result<u8, Status> {
    match u8::try_from(value) {
        Ok(l @ 1..=5) => Ok(l),
        _ => Err(invalid(format!(
            "{field} is {value}: levels go from 1 to 5"
        ))),
    }
}

fn requirements(field: &str, list: &[pb::Requirement]) -> Result<Vec<Requirement>, Status> {
    list.iter()
        .map(|r| {
            let skill = required(&format!("{field}.skill"), &r.skill)?;
            Ok(Requirement::new(
                skill,
                level(&format!("{field}[{skill}].min_level"), r.min_level)?,
            ))
        })
        .collect()
}

fn requirements_pb(list: &[Requirement]) -> Vec<pb::Requirement> {
    list.iter()
        .map(|r| pb::Requirement {
            skill: r.skill.to_string(),
            min_level: u32::from(r.min_level),
        })
        .collect()
}

/// Skills and levels from their protobuf list; a skill listed twice is refused.
pub fn skills(list: &[pb::SkillLevel]) -> Result<BTreeMap<Skill, u8>, Status> {
    let mut out = BTreeMap::new();
    for s in list {
        let skill = required("skills.skill", &s.skill)?;
        let l = level(&format!("skills[{skill}].level"), s.level)?;
        if out.insert(Skill::new(skill), l).is_some() {
            return Err(invalid(format!("skill {skill:?} is listed twice")));
        }
    }
    Ok(out)
}

fn skills_pb(skills: &BTreeMap<Skill, u8>) -> Vec<pb::SkillLevel> {
    skills
        .iter()
        .map(|(s, l)| pb::SkillLevel {
            skill: s.to_string(),
            level: u32::from(*l),
        })
        .collect()
}

/// A capacity per channel (each at most 1000).
pub fn capacity(c: &pb::Capacity) -> Result<Capacity, Status> {
    let one = |name: &str, v: u32| {
        u16::try_from(v)
            .ok()
            .filter(|v| *v <= 1000)
            .ok_or_else(|| invalid(format!("capacity.{name} is {v}: at most 1000")))
    };
    Ok(PerChannel {
        voice: one("voice", c.voice)?,
        email: one("email", c.email)?,
        sms: one("sms", c.sms)?,
        chat: one("chat", c.chat)?,
    })
}

fn counts_pb<T: Copy + Into<u64>>(c: &PerChannel<T>) -> pb::ChannelCounts {
    let n = |v: T| u32::try_from(v.into()).unwrap_or(u32::MAX);
    pb::ChannelCounts {
        voice: n(c.voice),
        email: n(c.email),
        sms: n(c.sms),
        chat: n(c.chat),
    }
}

fn capacity_pb(c: &Capacity) -> pb::Capacity {
    pb::Capacity {
        voice: u32::from(c.voice),
        email: u32::from(c.email),
        sms: u32::from(c.sms),
        chat: u32::from(c.chat),
    }
}

/// An agent's configuration from its protobuf form.
pub fn agent_config(a: &pb::Agent) -> Result<AgentConfig, Status> {
    let id = required("agent.id", &a.id)?;
    let mut config = AgentConfig::new(id);
    if !a.name.trim().is_empty() {
        config.name = a.name.trim().to_owned();
    }
    config.skills = skills(&a.skills)?;
    if let Some(c) = &a.capacity {
        config.capacity = capacity(c)?;
    }
    config.voice_exclusive = a.voice_exclusive.unwrap_or(true);
    config.device = device(&a.device)?;
    Ok(config)
}

/// A device (phone number or SIP URI); empty means none.
pub fn device(value: &str) -> Result<Option<String>, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let phone = value.starts_with('+')
        && value.len() >= 4
        && value.len() <= 16
        && value[1..].bytes().all(|b| b.is_ascii_digit());
    let sip = (value.starts_with("sip:") || value.starts_with("sips:"))
        && value.contains('@')
        && value.len() <= 256
        && !value.contains(char::is_whitespace);
    if phone || sip {
        Ok(Some(value.to_owned()))
    } else {
        Err(invalid(format!(
            "device {value:?} is neither an E.164 number (+33123456789) nor a SIP URI \
             (sip:agent@pbx.example.org)"
        )))
    }
}

/// The protobuf form of an agent's configuration.
pub fn agent_pb(config: &AgentConfig) -> pb::Agent {
    pb::Agent {
        id: config.id.to_string(),
        name: config.name.clone(),
        skills: skills_pb(&config.skills),
        capacity: Some(capacity_pb(&config.capacity)),
        voice_exclusive: Some(config.voice_exclusive),
        device: config.device.clone().unwrap_or_default(),
    }
}

/// The protobuf form of an agent's state.
pub fn state_pb(state: &AgentState) -> pb::AgentState {
    use pb::agent_state::Kind;
    match state {
        AgentState::Offline => pb::AgentState {
            kind: Kind::Offline as i32,
            ..Default::default()
        },
        AgentState::Available => pb::AgentState {
            kind: Kind::Available as i32,
            ..Default::default()
        },
        AgentState::Paused { reason } => pb::AgentState {
            kind: Kind::Paused as i32,
            pause_reason: reason.clone(),
            ..Default::default()
        },
        AgentState::WrapUp { until } => pb::AgentState {
            kind: Kind::WrapUp as i32,
            wrap_up_until_unix_ms: ms(*until),
            ..Default::default()
        },
    }
}

/// The protobuf form of an agent's status.
pub fn agent_status_pb(view: &crate::core::AgentView) -> pb::AgentStatus {
    pb::AgentStatus {
        agent: Some(agent_pb(&view.config)),
        state: Some(state_pb(&view.state)),
        load: Some(counts_pb(&view.load)),
        work: view.work.iter().map(ToString::to_string).collect(),
        misses: view.misses,
        idle_since_unix_ms: ms(view.idle_since),
        state_since_unix_ms: view.state_since.map_or(0, ms),
    }
}

fn strategy(value: i32) -> Result<Strategy, Status> {
    match pb::Strategy::try_from(value) {
        Ok(pb::Strategy::Unspecified | pb::Strategy::MostCompetent) => Ok(Strategy::MostCompetent),
        Ok(pb::Strategy::LongestIdle) => Ok(Strategy::LongestIdle),
        Ok(pb::Strategy::LeastOccupied) => Ok(Strategy::LeastOccupied),
        Ok(pb::Strategy::RoundRobin) => Ok(Strategy::RoundRobin),
        Err(_) => Err(invalid(format!("strategy {value} is not a known strategy"))),
    }
}

/// The protobuf form of a strategy.
pub fn strategy_pb(s: Strategy) -> i32 {
    match s {
        Strategy::MostCompetent => pb::Strategy::MostCompetent as i32,
        Strategy::LongestIdle => pb::Strategy::LongestIdle as i32,
        Strategy::LeastOccupied => pb::Strategy::LeastOccupied as i32,
        Strategy::RoundRobin => pb::Strategy::RoundRobin as i32,
    }
}

/// A queue's configuration from its protobuf form; absent fields take the defaults.
pub fn queue_config(q: &pb::Queue) -> Result<QueueConfig, Status> {
    let id = required("queue.id", &q.id)?;
    let mut config = QueueConfig::new(id);
    if !q.name.trim().is_empty() {
        config.name = q.name.trim().to_owned();
    }
    if !q.channels.is_empty() {
        let mut channels = Vec::new();
        for c in &q.channels {
            let c = channel("queue.channels", *c)?;
            if !channels.contains(&c) {
                channels.push(c);
            }
        }
        config.channels = channels;
    }
    config.requirements = requirements("queue.requirements", &q.requirements)?;
    config.default_priority = q.default_priority;
    if let Some(sla) = &q.sla_target_secs {
        let defaults = SlaTargets::default();
        let pick = |v: u64, d: u64| if v == 0 { d } else { v };
        config.sla_target_secs = PerChannel {
            voice: pick(sla.voice, defaults.voice),
            email: pick(sla.email, defaults.email),
            sms: pick(sla.sms, defaults.sms),
            chat: pick(sla.chat, defaults.chat),
        };
    }
    if let Some(days) = &q.sla_working_days {
        config.sla_working_days = WorkingDayTargets {
            voice: days.voice,
            email: days.email,
            sms: days.sms,
            chat: days.chat,
        };
    }
    config.strategy = strategy(q.strategy)?;
    config.escalation = q
        .escalation
        .iter()
        .enumerate()
        .map(|(i, step)| {
            use pb::escalation_step::Action;
            let action = match &step.action {
                Some(Action::LowerLevel(l)) => StepAction::LowerLevel {
                    skill: Skill::new(required(
                        &format!("queue.escalation[{i}].lower_level.skill"),
                        &l.skill,
                    )?),
                    to: level(
                        &format!("queue.escalation[{i}].lower_level.to_level"),
                        l.to_level,
                    )?,
                },
                Some(Action::DropSkill(s)) => StepAction::DropSkill {
                    skill: Skill::new(required(&format!("queue.escalation[{i}].drop_skill"), s)?),
                },
                Some(Action::WidenTo(q)) => StepAction::WidenTo {
                    queue: QueueId::new(required(&format!("queue.escalation[{i}].widen_to"), q)?),
                },
                None => {
                    return Err(invalid(format!(
                        "queue.escalation[{i}] needs an action: lower_level, drop_skill or widen_to"
                    )))
                }
            };
            Ok(EscalationStep {
                after_secs: step.after_secs,
                action,
            })
        })
        .collect::<Result<_, Status>>()?;
    config.overflow = match &q.overflow {
        None => None,
        Some(o) => {
            use pb::overflow::Action;
            let action = match &o.action {
                Some(Action::Queue(q)) => OverflowAction::Queue {
                    queue: QueueId::new(required("queue.overflow.queue", q)?),
                },
                Some(Action::Voicemail(true)) => OverflowAction::Voicemail,
                Some(Action::Callback(true)) => OverflowAction::Callback,
                Some(Action::Message(true)) => OverflowAction::Message,
                _ => {
                    return Err(invalid(
                        "queue.overflow needs an action: queue, voicemail, callback or message",
                    ))
                }
            };
            Some(Overflow {
                after_secs: o.after_secs,
                action,
            })
        }
    };
    if q.offer_timeout_secs != 0 {
        config.offer_timeout_secs = q.offer_timeout_secs;
    }
    if let Some(misses) = q.max_misses {
        config.max_misses = misses;
    }
    if q.reoffer_after_secs != 0 {
        config.reoffer_after_secs = q.reoffer_after_secs;
    }
    config.max_declines = q.max_declines;
    config.wrap_up_secs = q.wrap_up_secs;
    config.wrap_up_codes = q
        .wrap_up_codes
        .iter()
        .map(|c| c.trim().to_owned())
        .collect();
    let default_code = q.default_wrap_up_code.trim();
    config.default_wrap_up_code = (!default_code.is_empty()).then(|| default_code.to_owned());
    if let Some(bonus) = q.last_agent_bonus {
        config.last_agent_bonus = bonus;
    }
    config.public = q.public.unwrap_or(true);
    config.inform_moved = q.inform_moved;
    config.inform_late = q.inform_late;
    Ok(config)
}

/// The protobuf form of a queue's configuration.
pub fn queue_pb(q: &QueueConfig) -> pb::Queue {
    pb::Queue {
        id: q.id.to_string(),
        name: q.name.clone(),
        channels: q.channels.iter().map(|c| channel_pb(*c)).collect(),
        requirements: requirements_pb(&q.requirements),
        default_priority: q.default_priority,
        sla_target_secs: Some(pb::Durations {
            voice: q.sla_target_secs.voice,
            email: q.sla_target_secs.email,
            sms: q.sla_target_secs.sms,
            chat: q.sla_target_secs.chat,
        }),
        sla_working_days: (!q.sla_working_days.is_none()).then_some(pb::WorkingDays {
            voice: q.sla_working_days.voice,
            email: q.sla_working_days.email,
            sms: q.sla_working_days.sms,
            chat: q.sla_working_days.chat,
        }),
        strategy: strategy_pb(q.strategy),
        escalation: q
            .escalation
            .iter()
            .map(|s| {
                use pb::escalation_step::Action;
                pb::EscalationStep {
                    after_secs: s.after_secs,
                    action: Some(match &s.action {
                        StepAction::LowerLevel { skill, to } => {
                            Action::LowerLevel(pb::LowerLevel {
                                skill: skill.to_string(),
                                to_level: u32::from(*to),
                            })
                        }
                        StepAction::DropSkill { skill } => Action::DropSkill(skill.to_string()),
                        StepAction::WidenTo { queue } => Action::WidenTo(queue.to_string()),
                    }),
                }
            })
            .collect(),
        overflow: q.overflow.as_ref().map(|o| {
            use pb::overflow::Action;
            pb::Overflow {
                after_secs: o.after_secs,
                action: Some(match &o.action {
                    OverflowAction::Queue { queue } => Action::Queue(queue.to_string()),
                    OverflowAction::Voicemail => Action::Voicemail(true),
                    OverflowAction::Callback => Action::Callback(true),
                    OverflowAction::Message => Action::Message(true),
                }),
            }
        }),
        offer_timeout_secs: q.offer_timeout_secs,
        max_misses: Some(q.max_misses),
        reoffer_after_secs: q.reoffer_after_secs,
        max_declines: q.max_declines,
        wrap_up_secs: q.wrap_up_secs,
        last_agent_bonus: Some(q.last_agent_bonus),
        public: Some(q.public),
        wrap_up_codes: q.wrap_up_codes.clone(),
        default_wrap_up_code: q.default_wrap_up_code.clone().unwrap_or_default(),
        inform_moved: q.inform_moved,
        inform_late: q.inform_late,
    }
}

/// Limits on what an integrator may attach to an interaction.
const MAX_ATTRIBUTES: usize = 64;
const MAX_ATTRIBUTE_BYTES: usize = 4096;

/// An interaction's specification from its protobuf form; a missing id is generated.
pub fn interaction_spec(s: &pb::InteractionSpec) -> Result<InteractionSpec, Status> {
    let id = if s.id.trim().is_empty() {
        InteractionId(ulid::Ulid::new())
    } else {
        interaction_id("spec.id", &s.id)?
    };
    let mut spec = InteractionSpec::new(
        id,
        channel("spec.channel", s.channel)?,
        required("spec.queue", &s.queue)?,
    );
    let contact = s.contact.trim();
    if !contact.is_empty() {
        if contact.len() > 320 {
            return Err(invalid("spec.contact is longer than 320 bytes"));
        }
        spec.contact = Some(ContactId::new(contact));
    }
    spec.requirements = requirements("spec.requirements", &s.requirements)?;
    spec.preferred = s
        .preferred
        .iter()
        .map(|p| required("spec.preferred", p).map(Skill::new))
        .collect::<Result<_, _>>()?;
    spec.priority = s.priority;
    if s.sla_deadline_unix_ms < 0 {
        return Err(invalid("spec.sla_deadline_unix_ms must not be negative"));
    }
    if s.sla_deadline_unix_ms > 0 {
        spec.sla_deadline = Some(Timestamp(s.sla_deadline_unix_ms as u64));
    }
    if s.attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!(
            "spec.attributes has {} entries: at most {MAX_ATTRIBUTES}",
            s.attributes.len()
        )));
    }
    for a in &s.attributes {
        let key = required("spec.attributes.key", &a.key)?;
        if a.value.len() > MAX_ATTRIBUTE_BYTES {
            return Err(invalid(format!(
                "spec.attributes[{key}] is longer than {MAX_ATTRIBUTE_BYTES} bytes"
            )));
        }
        spec.attributes.insert(key, a.value.clone());
    }
    let external = s.external_ref.trim();
    if !external.is_empty() {
        if external.len() > 256 {
            return Err(invalid("spec.external_ref is longer than 256 bytes"));
        }
        spec.external_ref = Some(external.into());
    }
    Ok(spec)
}

/// The protobuf form of a decision, with a readable sentence.
pub fn decision_pb(agent: Option<&AgentId>, d: &Decision) -> pb::Decision {
    let mut text = match agent {
        Some(a) => format!("{a} chosen by rule {}", d.rule),
        None => format!("chosen by rule {}", d.rule),
    };
    text.push_str(&format!(
        " among {} free eligible agent(s), score {}",
        d.candidates, d.score
    ));
    if d.step > 0 {
        text.push_str(&format!(", at escalation step {}", d.step));
    }
    if let Some(r) = &d.runner_up {
        text.push_str(&format!("; runner-up {} with score {}", r.agent, r.score));
    }
    pb::Decision {
        rule: match d.rule {
            Rule::Strategy { strategy } => format!("strategy {}", strategy.as_str()),
            other => other.to_string(),
        },
        step: u32::from(d.step),
        candidates: d.candidates,
        score: d.score,
        runner_up_agent: d
            .runner_up
            .as_ref()
            .map(|r| r.agent.to_string())
            .unwrap_or_default(),
        runner_up_score: d.runner_up.as_ref().map_or(0, |r| r.score),
        text,
    }
}

/// The protobuf form of an open interaction.
pub fn interaction_pb(v: &InteractionView) -> pb::Interaction {
    let (phase, agent, offer_deadline) = match &v.phase {
        InteractionPhase::Waiting => (pb::Phase::Waiting, None, None),
        InteractionPhase::Offered { agent, deadline } => {
            (pb::Phase::Offered, Some(agent), Some(*deadline))
        }
        InteractionPhase::Assigned { agent } => (pb::Phase::Assigned, Some(agent), None),
        InteractionPhase::WrapUp { agent, .. } => (pb::Phase::WrapUp, Some(agent), None),
    };
    let consult = v.consult.as_ref().map(|c| pb::Consultation {
        agent: c.agent.to_string(),
        from_agent: agent.map(ToString::to_string).unwrap_or_default(),
        note: c.note.clone().unwrap_or_default(),
        started_at_unix_ms: ms(c.started_at),
        offer_deadline_unix_ms: opt_ms(c.deadline),
        accepted: c.deadline.is_none(),
    });
    pb::Interaction {
        consult,
        id: v.spec.id.to_string(),
        channel: channel_pb(v.spec.channel),
        queue: v.queue.to_string(),
        contact: v
            .spec
            .contact
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        priority: v.priority,
        sla_deadline_unix_ms: ms(v.sla_deadline),
        created_at_unix_ms: ms(v.created_at),
        enqueued_at_unix_ms: ms(v.enqueued_at),
        phase: phase as i32,
        agent: agent.map(ToString::to_string).unwrap_or_default(),
        offer_deadline_unix_ms: opt_ms(offer_deadline),
        requirements: requirements_pb(&v.spec.requirements),
        preferred: v.spec.preferred.iter().map(ToString::to_string).collect(),
        attributes: v
            .spec
            .attributes
            .iter()
            .map(|(k, v)| pb::Attribute {
                key: k.to_owned(),
                value: v.to_owned(),
            })
            .collect(),
        external_ref: v
            .spec
            .external_ref
            .as_deref()
            .unwrap_or_default()
            .to_owned(),
        target_agent: v
            .target
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        escalation_step: u32::from(v.step),
        decision: v.decision.as_ref().map(|d| decision_pb(agent, d)),
        reference: v.spec.id.reference().to_string(),
    }
}

/// The protobuf form of a journaled event; `queue` is the queue it concerns, if known.
pub fn event_pb(seq: u64, event: &Event, queue: Option<&QueueId>) -> pb::Event {
    let kind = &event.kind;
    pb::Event {
        seq,
        at_unix_ms: ms(event.at),
        kind: kind.name().to_owned(),
        interaction_id: kind
            .interaction()
            .map(|i| i.to_string())
            .unwrap_or_default(),
        agent_id: kind.agent().map(|a| a.to_string()).unwrap_or_default(),
        queue: queue.map(ToString::to_string).unwrap_or_default(),
        details_json: details_json(kind),
    }
}

/// The event as JSON, without attachment contents (files can be megabytes; they stay in the
/// store and are listed with their name, type and size).
fn details_json(kind: &EventKind) -> String {
    match kind {
        EventKind::MessageAdded {
            interaction,
            message,
        } if message
            .attachments
            .iter()
            .any(|a| !a.data_base64.is_empty()) =>
        {
            let mut light = (**message).clone();
            for a in &mut light.attachments {
                a.data_base64.clear();
            }
            serde_json::to_string(&EventKind::MessageAdded {
                interaction: *interaction,
                message: std::sync::Arc::new(light),
            })
            .unwrap_or_default()
        }
        _ => serde_json::to_string(kind).unwrap_or_default(),
    }
}

/// The protobuf form of an interaction that may have ended (`view` is `None` then).
pub fn interaction_or_ended(id: InteractionId, view: Option<&InteractionView>) -> pb::Interaction {
    match view {
        Some(v) => interaction_pb(v),
        None => pb::Interaction {
            id: id.to_string(),
            phase: pb::Phase::Ended as i32,
            ..Default::default()
        },
    }
}

/// The queue an event names itself, if any.
pub fn event_queue(kind: &EventKind) -> Option<&QueueId> {
    match kind {
        EventKind::InteractionCreated { spec, .. } => Some(&spec.queue),
        EventKind::InteractionMoved { queue, .. } => Some(queue),
        EventKind::QueueUpserted { config } => Some(&config.id),
        EventKind::QueueRemoved { queue } => Some(queue),
        _ => None,
    }
}
