//! The router's internal state and the indexes that keep each decision cheap.
//!
//! A *routing class* is one set of requirements: (queue, channel, escalation step, the
//! interaction's own requirement profile, target agent). Each class keeps
//! - its waiting interactions in an ordered set keyed by (priority desc, SLA deadline, enqueue
//!   time, id), and
//! - its *free eligible* agents in an ordered set keyed by the queue's strategy.
//!
//! Each agent keeps the list of classes it is eligible for (its *memberships*), with its competence
//! for each and the key under which it currently sits in that class's agent set, if it does. An
//! agent sits in a class's agent set exactly when it is available with room on the class's channel.
//! Changing an agent's load or state touches only the sets whose membership or key changed.

use std::collections::BTreeSet;
use std::hash::Hash;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::event::Decision;
use super::model::{
    AgentConfig, AgentId, AgentState, Channel, InteractionId, InteractionSpec, QueueConfig,
    Requirement, Skill, StepAction, Strategy, Timestamp,
};
use super::router::Router;
use super::view::Decline;

/// Index of an interned skill.
pub(super) type SkillIdx = u32;

/// Requirements as (skill index, minimum level), sorted by skill index, one entry per skill.
pub(super) type ReqSet = Vec<(SkillIdx, u8)>;

/// Interns values into dense indexes.
#[derive(Debug, Clone)]
pub(super) struct Interner<T: Hash + Eq + Clone> {
    map: FxHashMap<T, u32>,
    items: Vec<T>,
}

impl<T: Hash + Eq + Clone> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            map: FxHashMap::default(),
            items: Vec::new(),
        }
    }
}

impl<T: Hash + Eq + Clone> Interner<T> {
    pub(super) fn intern(&mut self, value: &T) -> u32 {
        if let Some(&i) = self.map.get(value) {
            return i;
        }
        let i = self.items.len() as u32;
        self.items.push(value.clone());
        self.map.insert(value.clone(), i);
        i
    }

    pub(super) fn get(&self, value: &T) -> Option<u32> {
        self.map.get(value).copied()
    }

    pub(super) fn resolve(&self, i: u32) -> Option<&T> {
        self.items.get(i as usize)
    }
}

/// Position of a waiting interaction in its class: smaller is served first.
///
/// The id is kept as two words (high, low), which sort as the `u128` does: a `u128` field would
/// align the key to 16 bytes and make it 48 bytes instead of 40, and the classes' ordered sets
/// hold one key per waiting interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct WaitKey {
    /// `u32::MAX - priority`, so that higher priorities sort first.
    pub(super) inv_priority: u32,
    pub(super) deadline: Timestamp,
    pub(super) enqueued: Timestamp,
    id: [u64; 2],
}

impl WaitKey {
    pub(super) fn of(slot: &Slot) -> Self {
        WaitKey {
            inv_priority: u32::MAX - slot.priority,
            deadline: slot.sla_deadline,
            enqueued: slot.enqueued_at,
            id: id_words(slot.spec.id),
        }
    }

    /// The interaction.
    pub(super) fn id(&self) -> InteractionId {
        InteractionId::from_u128((u128::from(self.id[0]) << 64) | u128::from(self.id[1]))
    }
}

/// An interaction id as two words, high first: they sort as the id does.
fn id_words(id: InteractionId) -> [u64; 2] {
    let n = id.0 .0;
    [(n >> 64) as u64, n as u64]
}

/// An agent's rank in a class under the class's strategy, smaller first (see [`agent_rank`]).
pub(super) type Rank = (i64, u64, u64);

/// Position of a free agent in a class: smaller is preferred. Its [`Rank`], then its id order
/// ([`AgentSlot::order`], the same order as the ids') breaks ties; `agent` is its index (the
/// order is unique, so the index never decides). Plain integers: at 100,000 agents most ranks
/// tie, and comparing two numbers is much cheaper than comparing two ids' texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct AgentKey {
    pub(super) rank: Rank,
    pub(super) order: u64,
    pub(super) agent: u32,
}

impl AgentKey {
    pub(super) fn of(a: u32, agent: &AgentSlot, rank: Rank) -> Self {
        AgentKey {
            rank,
            order: agent.order,
            agent: a,
        }
    }
}

/// Spacing of agents' id orders when they are renumbered: 2^32 agents fit in a `u64`, and about
/// 32 agents can be added between two neighbours before the next renumbering.
const ORDER_GAP: u64 = 1 << 32;

/// Requirements an interaction adds to its queue's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(super) struct Profile {
    pub(super) reqs: ReqSet,
    pub(super) preferred: Vec<SkillIdx>,
}

/// Identity of a routing class.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ClassKey {
    pub(super) queue: u32,
    pub(super) channel: Channel,
    pub(super) step: u8,
    pub(super) profile: u32,
    pub(super) target: Option<AgentId>,
}

/// One set of requirements, with its waiting interactions and its free eligible agents.
#[derive(Debug, Clone)]
pub(super) struct Class {
    pub(super) key: ClassKey,
    pub(super) strategy: Strategy,
    /// An agent is eligible when it satisfies any one of these; none at all for a removed queue.
    pub(super) alternatives: Vec<ReqSet>,
    pub(super) preferred: Vec<SkillIdx>,
    pub(super) waiting: BTreeSet<WaitKey>,
    pub(super) agents: BTreeSet<AgentKey>,
    /// Agents eligible, whatever their state.
    pub(super) eligible: u32,
}

/// An agent's eligibility for one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Membership {
    pub(super) class: u32,
    pub(super) competence: u32,
    /// The key under which the agent sits in the class's agent set, if it does.
    pub(super) key: Option<Rank>,
}

/// An agent's configuration and live state.
#[derive(Debug, Clone)]
pub(super) struct AgentSlot {
    pub(super) config: AgentConfig,
    /// The agent's id order: comparing two agents' orders gives the same result as comparing
    /// their ids (kept by [`Router::assign_order`]; the values themselves depend on history,
    /// only their order is used).
    pub(super) order: u64,
    /// Level per skill index (0 = not held).
    pub(super) levels: Vec<u8>,
    pub(super) state: AgentState,
    /// When the state last changed (`None`: restored from a snapshot that did not keep it).
    pub(super) state_since: Option<Timestamp>,
    /// Interactions offered, assigned or in wrap-up, per channel index.
    pub(super) load: [u16; 4],
    /// Per channel index: when the agent last finished work on the channel or became
    /// available.
    pub(super) idle_since: [Timestamp; 4],
    /// The router's offer sequence number at the agent's last offer, on any channel.
    pub(super) last_offer_seq: u64,
    /// Per channel index: the offer sequence number at the agent's last offer on the channel.
    pub(super) last_offer_on: [u64; 4],
    /// Offers missed (timed out) in a row.
    pub(super) misses: u32,
    /// Offers declined in a row.
    pub(super) declines: u32,
    /// Sorted by class index.
    pub(super) memberships: Vec<Membership>,
    /// Interactions offered, assigned or in wrap-up.
    pub(super) work: Vec<InteractionId>,
    /// Interactions held by colleagues on which this agent is consulted (offered or accepted):
    /// each holds one unit of its capacity on the interaction's channel.
    pub(super) consults: Vec<InteractionId>,
}

impl AgentSlot {
    pub(super) fn level(&self, skill: SkillIdx) -> u8 {
        self.levels.get(skill as usize).copied().unwrap_or(0)
    }

    pub(super) fn capacity(&self, channel: Channel) -> u16 {
        self.config.capacity.get(channel)
    }

    /// Whether the agent can be offered one more interaction on `channel` now.
    pub(super) fn can_take(&self, channel: Channel) -> bool {
        if self.state != AgentState::Available {
            return false;
        }
        let i = channel.index();
        if self.load[i] >= self.capacity(channel) {
            return false;
        }
        if self.config.voice_exclusive {
            let voice = self.load[Channel::Voice.index()];
            let others: u16 = self.load.iter().sum::<u16>() - voice;
            if channel == Channel::Voice {
                others == 0
            } else {
                voice == 0
            }
        } else {
            true
        }
    }

    /// Share of total capacity in use, in thousandths.
    pub(super) fn occupancy(&self) -> u64 {
        let cap: u64 = Channel::ALL
            .iter()
            .map(|&c| u64::from(self.capacity(c)))
            .sum();
        let load: u64 = self.load.iter().map(|&l| u64::from(l)).sum();
        (load * 1000).checked_div(cap).unwrap_or(1000)
    }

    pub(super) fn membership(&self, class: u32) -> Option<&Membership> {
        self.memberships
            .binary_search_by_key(&class, |m| m.class)
            .ok()
            .map(|i| &self.memberships[i])
    }
}

/// The sort fields of an agent in a class of `channel` under `strategy` (smaller first): the
/// strategy's own criterion, then the tie-breaks every strategy shares, idle the longest on the
/// channel and last offered on the channel the longest ago.
pub(super) fn agent_rank(
    strategy: Strategy,
    agent: &AgentSlot,
    competence: u32,
    channel: Channel,
) -> Rank {
    let idle = agent.idle_since[channel.index()].0;
    let offered = agent.last_offer_on[channel.index()];
    match strategy {
        Strategy::MostCompetent => (-i64::from(competence), idle, offered),
        Strategy::LongestIdle => (idle as i64, offered, 0),
        Strategy::LeastOccupied => (agent.occupancy() as i64, idle, offered),
        Strategy::RoundRobin => (agent.last_offer_seq as i64, idle, offered),
    }
}

/// A rank turned into a score where higher is better, for explanations.
pub(super) fn rank_score(strategy: Strategy, rank: Rank, at: Timestamp) -> i64 {
    match strategy {
        Strategy::MostCompetent => -rank.0,
        Strategy::LongestIdle => at.0 as i64 - rank.0,
        Strategy::LeastOccupied => 1000 - rank.0,
        Strategy::RoundRobin => -rank.0,
    }
}

/// Where an interaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Waiting,
    Offered { agent: u32, deadline: Timestamp },
    Assigned { agent: u32 },
    WrapUp { agent: u32, until: Timestamp },
}

impl Phase {
    pub(super) fn agent(self) -> Option<u32> {
        match self {
            Phase::Waiting => None,
            Phase::Offered { agent, .. }
            | Phase::Assigned { agent }
            | Phase::WrapUp { agent, .. } => Some(agent),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Offered { .. } => "offered",
            Phase::Assigned { .. } => "assigned",
            Phase::WrapUp { .. } => "in wrap-up",
        }
    }
}

/// Which of an interaction's timers is pending (the slot keeps this and the time, not the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimerKind {
    WrapUpEnd,
    OfferTimeout,
    Wait,
    ConsultTimeout,
}

impl TimerKind {
    pub(super) fn timer(self, id: InteractionId) -> Timer {
        match self {
            TimerKind::WrapUpEnd => Timer::WrapUpEnd(id),
            TimerKind::OfferTimeout => Timer::OfferTimeout(id),
            TimerKind::Wait => Timer::Wait(id),
            TimerKind::ConsultTimeout => Timer::ConsultTimeout(id),
        }
    }
}

/// A pending deadline. Variant order matters: at equal times, wrap-ups end before agents leave
/// wrap-up, and offers time out before waiting interactions escalate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Timer {
    WrapUpEnd(InteractionId),
    AgentWrapUp(AgentId),
    OfferTimeout(InteractionId),
    Wait(InteractionId),
    ConsultTimeout(InteractionId),
}

/// The open interactions: their slots in one dense vector, and a map from id to position.
///
/// Rather than a map holding the slots themselves: the map's entries stay small (an id and a
/// position), so growing it moves little memory, and the vector grows in place (a large
/// allocation is remapped, not copied). This matters when recovery rebuilds a router with a
/// million waiting interactions. Removal moves the last slot into the hole, so iteration order
/// is not creation order; nothing depends on it (listings sort by id).
#[derive(Debug, Clone, Default)]
pub(super) struct Slots {
    /// Keyed by the id's two words: a `u128` key would align each entry to 16 bytes (32 instead
    /// of 24).
    position: FxHashMap<[u64; 2], u32>,
    slots: Vec<Slot>,
}

impl Slots {
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn contains_key(&self, id: &InteractionId) -> bool {
        self.position.contains_key(&id_words(*id))
    }

    pub(super) fn get(&self, id: &InteractionId) -> Option<&Slot> {
        let &i = self.position.get(&id_words(*id))?;
        self.slots.get(i as usize)
    }

    pub(super) fn get_mut(&mut self, id: &InteractionId) -> Option<&mut Slot> {
        let &i = self.position.get(&id_words(*id))?;
        self.slots.get_mut(i as usize)
    }

    /// Inserts or replaces the slot of `id` (which must be `slot.spec.id`).
    pub(super) fn insert(&mut self, id: InteractionId, slot: Slot) -> Option<Slot> {
        debug_assert_eq!(id, slot.spec.id);
        match self.position.get(&id_words(id)) {
            Some(&i) => Some(std::mem::replace(&mut self.slots[i as usize], slot)),
            None => {
                let i = u32::try_from(self.slots.len())
                    .unwrap_or_else(|_| unreachable!("more than 2^32 open interactions"));
                self.position.insert(id_words(id), i);
                self.slots.push(slot);
                None
            }
        }
    }

    pub(super) fn remove(&mut self, id: &InteractionId) -> Option<Slot> {
        let i = self.position.remove(&id_words(*id))? as usize;
        let slot = self.slots.swap_remove(i);
        if let Some(moved) = self.slots.get(i) {
            self.position.insert(id_words(moved.spec.id), i as u32);
        }
        Some(slot)
    }

    pub(super) fn values(&self) -> std::slice::Iter<'_, Slot> {
        self.slots.iter()
    }
}

/// The open interactions' external references (CallSid, Message-ID...), to make creation
/// idempotent.
///
/// Keyed by the text's hash, computed once: a map keyed by the text itself hashes every key
/// again each time it grows, reading strings scattered all over memory (a million of them when
/// recovery rebuilds a large router). A text whose hash is already taken by another text (a
/// 64-bit collision: in practice never) goes to a short side list.
#[derive(Debug, Clone, Default)]
pub(super) struct ExternalRefs {
    by_hash: FxHashMap<u64, ExternalEntry>,
    collided: Vec<(u64, ExternalEntry)>,
}

/// A text and its interaction (the id as two words, so that an entry is 40 bytes, not 48).
#[derive(Debug, Clone)]
struct ExternalEntry {
    text: Arc<str>,
    id: [u64; 2],
}

impl ExternalEntry {
    fn new(text: Arc<str>, id: InteractionId) -> Self {
        ExternalEntry {
            text,
            id: id_words(id),
        }
    }

    fn id(&self) -> InteractionId {
        InteractionId::from_u128((u128::from(self.id[0]) << 64) | u128::from(self.id[1]))
    }
}

fn text_hash(text: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = rustc_hash::FxBuildHasher.build_hasher();
    hasher.write(text.as_bytes());
    hasher.finish()
}

impl ExternalRefs {
    pub(super) fn get(&self, text: &str) -> Option<InteractionId> {
        self.get_hashed(text_hash(text), text)
    }

    fn get_hashed(&self, hash: u64, text: &str) -> Option<InteractionId> {
        let entry = self.by_hash.get(&hash)?;
        if *entry.text == *text {
            return Some(entry.id());
        }
        self.collided
            .iter()
            .find(|(h, e)| *h == hash && *e.text == *text)
            .map(|(_, e)| e.id())
    }

    pub(super) fn contains_key(&self, text: &str) -> bool {
        self.get(text).is_some()
    }

    /// Maps `text` to `id`, replacing what it mapped to.
    pub(super) fn insert(&mut self, text: Arc<str>, id: InteractionId) {
        self.insert_hashed(text_hash(&text), text, id);
    }

    fn insert_hashed(&mut self, hash: u64, text: Arc<str>, id: InteractionId) {
        use std::collections::hash_map::Entry;
        let new = ExternalEntry::new(text, id);
        match self.by_hash.entry(hash) {
            Entry::Vacant(v) => {
                v.insert(new);
            }
            Entry::Occupied(mut o) => {
                if o.get().text == new.text {
                    o.insert(new);
                } else if let Some((_, e)) = self
                    .collided
                    .iter_mut()
                    .find(|(h, e)| *h == hash && e.text == new.text)
                {
                    *e = new;
                } else {
                    self.collided.push((hash, new));
                }
            }
        }
    }

    pub(super) fn remove(&mut self, text: &str) {
        self.remove_hashed(text_hash(text), text);
    }

    fn remove_hashed(&mut self, hash: u64, text: &str) {
        use std::collections::hash_map::Entry;
        let Entry::Occupied(mut o) = self.by_hash.entry(hash) else {
            return;
        };
        if *o.get().text == *text {
            // A text that shares the hash takes the freed place.
            match self.collided.iter().position(|(h, _)| *h == hash) {
                Some(i) => {
                    o.insert(self.collided.swap_remove(i).1);
                }
                None => {
                    o.remove();
                }
            }
        } else {
            self.collided
                .retain(|(h, e)| !(*h == hash && *e.text == *text));
        }
    }
}

/// An open interaction.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) spec: Arc<InteractionSpec>,
    pub(super) queue: u32,
    pub(super) priority: u32,
    pub(super) sla_deadline: Timestamp,
    pub(super) created_at: Timestamp,
    /// Position in line (kept across declines and overflows).
    pub(super) enqueued_at: Timestamp,
    /// When it entered its current queue: escalation and overflow count from here.
    pub(super) queue_entered_at: Timestamp,
    pub(super) step: u8,
    pub(super) profile: u32,
    /// Its class while waiting (and the class it came from while offered).
    pub(super) class: u32,
    pub(super) phase: Phase,
    /// Agents who declined or missed it since it last escalated or moved, and when: not offered
    /// it again until the queue's `reoffer_after_secs` has passed (a `decline_lapsed` event then
    /// takes them off the list).
    pub(super) declined_by: Declines,
    pub(super) overflowed: bool,
    /// Boxed: only offered and assigned interactions have one, and waiting ones should be small.
    pub(super) decision: Option<Box<Decision>>,
    pub(super) timer: Option<(Timestamp, TimerKind)>,
    /// What few interactions have (a target agent, a wrap-up code, a transfer, a consultation),
    /// boxed together: every waiting interaction has a slot, and it should be small.
    pub(super) extra: Option<Box<SlotExtra>>,
}

/// The fields of a [`Slot`] that most interactions never set.
#[derive(Debug, Clone, Default)]
pub(super) struct SlotExtra {
    /// The one agent it waits for, after a transfer to an agent.
    pub(super) target: Option<AgentId>,
    /// The code given at completion, while in wrap-up.
    pub(super) wrap_up_code: Option<Box<str>>,
    /// Its last transfer by an agent.
    pub(super) transfer: Option<crate::core::TransferNote>,
    /// The consultation in progress, while assigned.
    pub(super) consult: Option<Consult>,
}

/// The agents who declined or missed a waiting interaction ([`Slot::declined_by`]): boxed, since
/// most interactions have none and a waiting slot should be small (8 bytes, not a `Vec`'s 24).
/// Reads as a slice.
/// (A boxed `Vec` on purpose: its pointer is 8 bytes, a boxed slice's 16.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(clippy::box_collection)]
pub(super) struct Declines(Option<Box<Vec<Decline>>>);

impl std::ops::Deref for Declines {
    type Target = [Decline];

    fn deref(&self) -> &[Decline] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl std::ops::DerefMut for Declines {
    fn deref_mut(&mut self) -> &mut [Decline] {
        match &mut self.0 {
            Some(list) => list.as_mut_slice(),
            None => &mut [],
        }
    }
}

impl From<Vec<Decline>> for Declines {
    fn from(list: Vec<Decline>) -> Self {
        Declines((!list.is_empty()).then(|| Box::new(list)))
    }
}

impl Declines {
    pub(super) fn push(&mut self, decline: Decline) {
        self.0.get_or_insert_with(Box::default).push(decline);
    }

    /// Keeps the declines for which `keep` is true.
    pub(super) fn retain(&mut self, keep: impl FnMut(&Decline) -> bool) {
        if let Some(list) = &mut self.0 {
            list.retain(keep);
            if list.is_empty() {
                self.0 = None;
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.0 = None;
    }
}

/// A consultation on an assigned interaction: the colleague consulted by the agent holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Consult {
    /// The consulted agent.
    pub(super) agent: u32,
    /// Why, for the consulted agent.
    pub(super) note: Option<String>,
    /// When it started.
    pub(super) started_at: Timestamp,
    /// When the offer times out, while not accepted yet; `None` once accepted.
    pub(super) deadline: Option<Timestamp>,
}

impl Slot {
    /// The one agent it waits for, after a transfer to an agent.
    pub(super) fn target(&self) -> Option<&AgentId> {
        self.extra.as_ref()?.target.as_ref()
    }

    /// The code given at completion, while in wrap-up.
    pub(super) fn wrap_up_code(&self) -> Option<&str> {
        self.extra.as_ref()?.wrap_up_code.as_deref()
    }

    /// Its last transfer by an agent.
    pub(super) fn transfer(&self) -> Option<&crate::core::TransferNote> {
        self.extra.as_ref()?.transfer.as_ref()
    }

    /// The consultation in progress.
    pub(super) fn consult(&self) -> Option<&Consult> {
        self.extra.as_ref()?.consult.as_ref()
    }

    /// The consultation in progress, to change it.
    pub(super) fn consult_mut(&mut self) -> Option<&mut Consult> {
        self.extra.as_mut()?.consult.as_mut()
    }

    /// Ends the consultation in progress, returning it.
    pub(super) fn take_consult(&mut self) -> Option<Consult> {
        self.extra.as_mut()?.consult.take()
    }

    /// The rarely set fields, to set one (boxed on first use).
    pub(super) fn extra_mut(&mut self) -> &mut SlotExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Sets the agent it waits for (no box is made to hold `None`).
    pub(super) fn set_target(&mut self, target: Option<AgentId>) {
        if target.is_some() || self.target().is_some() {
            self.extra_mut().target = target;
        }
    }

    /// Sets the code given at completion (no box is made to hold `None`).
    pub(super) fn set_wrap_up_code(&mut self, code: Option<&str>) {
        if code.is_some() || self.wrap_up_code().is_some() {
            self.extra_mut().wrap_up_code = code.map(Box::from);
        }
    }

    /// Whether `agent` declined or missed it and may not be offered it again yet.
    pub(super) fn declined(&self, agent: &AgentId) -> bool {
        self.declined_by.iter().any(|d| d.agent == *agent)
    }

    /// When the first of its declines lapses, `reoffer_after_secs` after it happened.
    pub(super) fn next_lapse(&self, reoffer_after_secs: u64) -> Option<Timestamp> {
        self.declined_by
            .iter()
            .map(|d| d.at.plus_secs(reoffer_after_secs))
            .min()
    }
}

/// A queue's configuration, its interned requirements and its classes.
#[derive(Debug, Clone)]
pub(super) struct QueueSlot {
    pub(super) config: QueueConfig,
    pub(super) reqs: ReqSet,
    pub(super) classes: Vec<u32>,
    /// Open interactions whose current queue this is.
    pub(super) open: usize,
    pub(super) removed: bool,
}

/// Merges requirement lists keeping the highest minimum per skill.
pub(super) fn merge_reqs(a: &[(SkillIdx, u8)], b: &[(SkillIdx, u8)]) -> ReqSet {
    let mut out: ReqSet = a.iter().chain(b.iter()).copied().collect();
    out.sort_unstable();
    // Sorted by (skill, level): keep the last (highest) level of each skill.
    let mut merged: ReqSet = Vec::with_capacity(out.len());
    for (s, l) in out {
        match merged.last_mut() {
            Some(last) if last.0 == s => last.1 = l,
            _ => merged.push((s, l)),
        }
    }
    merged
}

impl Router {
    pub(super) fn intern_reqs(&mut self, reqs: &[Requirement]) -> ReqSet {
        let mut list: ReqSet = reqs
            .iter()
            .map(|r| (self.skills.intern(&r.skill), r.min_level))
            .collect();
        // `merge_reqs(&list, &[])` without its two extra vectors: sorted by (skill, level), the
        // last (highest) level of each skill kept.
        list.sort_unstable();
        list.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                kept.1 = later.1;
                true
            } else {
                false
            }
        });
        list
    }

    pub(super) fn intern_levels(
        &mut self,
        skills: &std::collections::BTreeMap<Skill, u8>,
    ) -> Vec<u8> {
        let mut levels = Vec::new();
        for (skill, &level) in skills {
            let i = self.skills.intern(skill) as usize;
            if levels.len() <= i {
                levels.resize(i + 1, 0);
            }
            levels[i] = level;
        }
        levels
    }

    pub(super) fn intern_profile(&mut self, spec: &InteractionSpec) -> u32 {
        let reqs = self.intern_reqs(&spec.requirements);
        let mut preferred: Vec<SkillIdx> = spec
            .preferred
            .iter()
            .map(|s| self.skills.intern(s))
            .collect();
        preferred.sort_unstable();
        preferred.dedup();
        self.profiles.intern(&Profile { reqs, preferred })
    }

    /// The requirement alternatives of (queue, step, profile) after the queue's first `step`
    /// escalation steps.
    fn class_alternatives(&self, queue: u32, step: u8, profile: &Profile) -> Vec<ReqSet> {
        let q = &self.queues[queue as usize];
        if q.removed {
            return Vec::new();
        }
        let mut alts = vec![merge_reqs(&q.reqs, &profile.reqs)];
        for s in q.config.escalation.iter().take(step as usize) {
            match &s.action {
                StepAction::LowerLevel { skill, to } => {
                    if let Some(k) = self.skills.get(skill) {
                        for alt in &mut alts {
                            for r in alt.iter_mut().filter(|r| r.0 == k) {
                                r.1 = r.1.min(*to);
                            }
                        }
                    }
                }
                StepAction::DropSkill { skill } => {
                    if let Some(k) = self.skills.get(skill) {
                        for alt in &mut alts {
                            alt.retain(|r| r.0 != k);
                        }
                    }
                }
                StepAction::WidenTo { queue: other } => {
                    if let Some(&o) = self.queue_ix.get(other) {
                        let oq = &self.queues[o as usize];
                        if !oq.removed {
                            let alt = merge_reqs(&oq.reqs, &profile.reqs);
                            if !alts.contains(&alt) {
                                alts.push(alt);
                            }
                        }
                    }
                }
            }
        }
        alts
    }

    /// The agent's competence for a class, or `None` if it is not eligible.
    pub(super) fn competence(class: &Class, agent: &AgentSlot) -> Option<u32> {
        if let Some(target) = &class.key.target {
            return (!class.alternatives.is_empty() && *target == agent.config.id).then_some(0);
        }
        let mut best: Option<u32> = None;
        for alt in &class.alternatives {
            let mut sum = 0u32;
            let mut ok = true;
            for &(s, min) in alt {
                let l = agent.level(s);
                if l < min {
                    ok = false;
                    break;
                }
                sum += u32::from(l);
            }
            if ok {
                best = Some(best.map_or(sum, |b| b.max(sum)));
            }
        }
        let base = best?;
        let bonus: u32 = class
            .preferred
            .iter()
            .map(|&s| u32::from(agent.level(s)))
            .sum();
        Some(base + bonus)
    }

    /// The class for this key, created (with its eligible agents) if it does not exist yet.
    pub(super) fn class_for(&mut self, key: ClassKey) -> u32 {
        if let Some(&c) = self.class_ix.get(&key) {
            return c;
        }
        let c = self.classes.len() as u32;
        let q = &self.queues[key.queue as usize];
        let strategy = q.config.strategy;
        let profile = self
            .profiles
            .resolve(key.profile)
            .cloned()
            .unwrap_or_default();
        let alternatives = if key.target.is_some() {
            if q.removed {
                Vec::new()
            } else {
                vec![Vec::new()]
            }
        } else {
            self.class_alternatives(key.queue, key.step, &profile)
        };
        let class = Class {
            key: key.clone(),
            strategy,
            alternatives,
            preferred: profile.preferred,
            waiting: BTreeSet::new(),
            agents: BTreeSet::new(),
            eligible: 0,
        };
        self.classes.push(class);
        self.class_ix.insert(key.clone(), c);
        self.queues[key.queue as usize].classes.push(c);
        let Router {
            agents, classes, ..
        } = self;
        let class = &mut classes[c as usize];
        for (a, agent) in agents.iter_mut().enumerate() {
            let Some(agent) = agent else { continue };
            if let Some(competence) = Self::competence(class, agent) {
                class.eligible += 1;
                // `c` is the largest class index, so pushing keeps memberships sorted.
                let key = agent
                    .can_take(class.key.channel)
                    .then(|| agent_rank(class.strategy, agent, competence, class.key.channel));
                if let Some(k) = key {
                    class.agents.insert(AgentKey::of(a as u32, agent, k));
                }
                agent.memberships.push(Membership {
                    class: c,
                    competence,
                    key,
                });
            }
        }
        c
    }

    /// Recomputes a class's requirements and strategy from its queue, and which agents are
    /// eligible for it.
    pub(super) fn refresh_class(&mut self, c: u32) {
        let key = self.classes[c as usize].key.clone();
        let q = &self.queues[key.queue as usize];
        let strategy = q.config.strategy;
        let removed = q.removed;
        let profile = self
            .profiles
            .resolve(key.profile)
            .cloned()
            .unwrap_or_default();
        let alternatives = if key.target.is_some() {
            if removed {
                Vec::new()
            } else {
                vec![Vec::new()]
            }
        } else {
            self.class_alternatives(key.queue, key.step, &profile)
        };
        let Router {
            agents, classes, ..
        } = self;
        let class = &mut classes[c as usize];
        class.strategy = strategy;
        class.alternatives = alternatives;
        class.agents.clear();
        class.eligible = 0;
        for (a, agent) in agents.iter_mut().enumerate() {
            let Some(agent) = agent else { continue };
            let competence = Self::competence(class, agent);
            let pos = agent.memberships.binary_search_by_key(&c, |m| m.class);
            match (competence, pos) {
                (Some(competence), Ok(i)) => {
                    agent.memberships[i].competence = competence;
                    agent.memberships[i].key = None;
                }
                (Some(competence), Err(i)) => agent.memberships.insert(
                    i,
                    Membership {
                        class: c,
                        competence,
                        key: None,
                    },
                ),
                (None, Ok(i)) => {
                    agent.memberships.remove(i);
                }
                (None, Err(_)) => {}
            }
            if competence.is_some() {
                class.eligible += 1;
                if let Ok(i) = agent.memberships.binary_search_by_key(&c, |m| m.class) {
                    if agent.can_take(class.key.channel) {
                        let k = agent_rank(
                            class.strategy,
                            agent,
                            agent.memberships[i].competence,
                            class.key.channel,
                        );
                        class.agents.insert(AgentKey::of(a as u32, agent, k));
                        agent.memberships[i].key = Some(k);
                    }
                }
            }
        }
    }

    /// Takes an agent out of every class (before a skill change or its removal).
    pub(super) fn detach_agent(&mut self, a: u32) {
        let Router {
            agents, classes, ..
        } = self;
        let Some(agent) = agents[a as usize].as_mut() else {
            return;
        };
        let order = agent.order;
        for m in agent.memberships.drain(..) {
            let class = &mut classes[m.class as usize];
            class.eligible -= 1;
            if let Some(rank) = m.key {
                class.agents.remove(&AgentKey {
                    rank,
                    order,
                    agent: a,
                });
            }
        }
    }

    /// Recomputes every membership of an agent from scratch (after a skill change).
    pub(super) fn attach_agent(&mut self, a: u32) {
        self.detach_agent(a);
        let Router {
            agents, classes, ..
        } = self;
        let Some(agent) = agents[a as usize].as_mut() else {
            return;
        };
        for (c, class) in classes.iter_mut().enumerate() {
            if let Some(competence) = Self::competence(class, agent) {
                class.eligible += 1;
                agent.memberships.push(Membership {
                    class: c as u32,
                    competence,
                    key: None,
                });
            }
        }
        self.resync_agent(a);
    }

    /// Gives agent `a` (already in `agent_order`, not yet in any class's agent set) an order
    /// between its neighbours' in id order; when there is no room, renumbers every agent and
    /// rebuilds the classes' agent sets under the new orders.
    pub(super) fn assign_order(&mut self, a: u32) {
        let id = self.agent_ref(a).config.id.clone();
        let order_of = |router: &Router, b: Option<(&AgentId, &u32)>| {
            b.map(|(_, &b)| router.agent_ref(b).order)
        };
        let below = order_of(self, self.agent_order.range(..&id).next_back()).unwrap_or(0);
        let above = {
            use std::ops::Bound::{Excluded, Unbounded};
            order_of(
                self,
                self.agent_order.range((Excluded(&id), Unbounded)).next(),
            )
        };
        let order = match above {
            None => below.checked_add(ORDER_GAP),
            Some(above) => (above - below >= 2).then(|| below + (above - below) / 2),
        };
        match order {
            Some(order) => self.agent_mut(a).order = order,
            None => self.renumber_orders(),
        }
    }

    /// Spreads every agent's order `ORDER_GAP` apart, in id order, and rebuilds the classes'
    /// agent sets with them.
    fn renumber_orders(&mut self) {
        let Router {
            agents,
            classes,
            agent_order,
            ..
        } = self;
        for (i, &a) in agent_order.values().enumerate() {
            if let Some(agent) = agents[a as usize].as_mut() {
                agent.order = (i as u64 + 1) * ORDER_GAP;
            }
        }
        for class in classes.iter_mut() {
            class.agents.clear();
        }
        for (a, agent) in agents.iter().enumerate() {
            let Some(agent) = agent else { continue };
            for m in &agent.memberships {
                if let Some(k) = m.key {
                    classes[m.class as usize]
                        .agents
                        .insert(AgentKey::of(a as u32, agent, k));
                }
            }
        }
    }

    /// After a change of agent `a`'s state, load, idle time or offer sequence: it is put in (or
    /// taken out of) each of its classes' agent sets, under its current key, before the next read
    /// of those sets ([`Router::flush_resyncs`]).
    ///
    /// Deferred rather than done here: an agent who completes and at once takes the next waiting
    /// interaction would otherwise enter the agent set of each of its classes and leave them again
    /// within the same command, for nothing.
    pub(super) fn resync_agent(&mut self, a: u32) {
        if !self.pending_resyncs.contains(&a) {
            self.pending_resyncs.push(a);
        }
    }

    /// Brings the classes' agent sets up to date with every agent changed since the last flush.
    /// Called before any read of a class's agent set, and at the end of every command, tick and
    /// applied event, so that nothing outside the router ever sees a pending change.
    pub(super) fn flush_resyncs(&mut self) {
        while let Some(a) = self.pending_resyncs.pop() {
            self.resync_now(a);
        }
    }

    /// Puts the agent in (or takes it out of) each of its classes' agent sets, under its current
    /// key.
    fn resync_now(&mut self, a: u32) {
        let Router {
            agents, classes, ..
        } = self;
        let Some(agent) = agents[a as usize].as_mut() else {
            return;
        };
        let mut memberships = std::mem::take(&mut agent.memberships);
        for m in &mut memberships {
            let class = &mut classes[m.class as usize];
            let want = agent
                .can_take(class.key.channel)
                .then(|| agent_rank(class.strategy, agent, m.competence, class.key.channel));
            if want != m.key {
                if let Some(old) = m.key {
                    class.agents.remove(&AgentKey::of(a, agent, old));
                }
                if let Some(new) = want {
                    class.agents.insert(AgentKey::of(a, agent, new));
                }
                m.key = want;
            }
        }
        agent.memberships = memberships;
    }

    /// The class key an interaction belongs to now.
    pub(super) fn class_key_of(&self, slot: &Slot) -> ClassKey {
        let steps = self.queues[slot.queue as usize].config.escalation.len();
        ClassKey {
            queue: slot.queue,
            channel: slot.spec.channel,
            step: if slot.target().is_some() {
                0
            } else {
                slot.step.min(steps as u8)
            },
            profile: slot.profile,
            target: slot.target().cloned(),
        }
    }

    /// When a waiting interaction's next escalation step, overflow or decline lapse is due (an
    /// interaction waiting for one agent neither escalates nor overflows).
    pub(super) fn wait_deadline(&self, slot: &Slot) -> Option<Timestamp> {
        let q = &self.queues[slot.queue as usize].config;
        let lapse = slot.next_lapse(q.reoffer_after_secs);
        if slot.target().is_some() {
            return lapse;
        }
        let step_at = q
            .escalation
            .get(slot.step as usize)
            .map(|s| slot.queue_entered_at.plus_secs(s.after_secs));
        let overflow_at = if slot.overflowed {
            None
        } else {
            q.overflow
                .as_ref()
                .map(|o| slot.queue_entered_at.plus_secs(o.after_secs))
        };
        [step_at, overflow_at, lapse].into_iter().flatten().min()
    }

    /// Replaces the interaction's pending timer.
    pub(super) fn set_timer(&mut self, id: InteractionId, timer: Option<(Timestamp, TimerKind)>) {
        let Some(slot) = self.interactions.get_mut(&id) else {
            return;
        };
        if slot.timer == timer {
            return;
        }
        if let Some((at, kind)) = slot.timer.take() {
            self.timers.remove(&(at, kind.timer(id)));
        }
        if let Some((at, kind)) = timer {
            self.timers.insert((at, kind.timer(id)));
            slot.timer = Some((at, kind));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_keep_their_ids_order_whatever_order_they_come_in() {
        use crate::core::{Command, EventKind};
        let t = Timestamp::from_secs(1);
        let mut router = Router::new();
        let queue = QueueConfig::new("q");
        router
            .handle(t, Command::UpsertQueue { config: queue })
            .unwrap();
        // "a", "b", then ids squeezed ever closer above "a" ("a01" > "a001" > ...): each new
        // order halves the room below the last one, until the orders are renumbered.
        let mut ids = vec!["b".to_string(), "a".to_string()];
        ids.extend((1..60).map(|k| format!("a{}1", "0".repeat(k))));
        for id in &ids {
            let config = AgentConfig::new(id.as_str());
            router.handle(t, Command::UpsertAgent { config }).unwrap();
            router
                .handle(
                    t,
                    Command::Login {
                        agent: id.as_str().into(),
                    },
                )
                .unwrap();
            router.check_invariants().unwrap();
        }
        let orders: Vec<u64> = router
            .agent_order
            .values()
            .map(|&a| router.agent_ref(a).order)
            .collect();
        assert!(orders.windows(2).all(|w| w[0] < w[1]));
        // Every agent ties on every number: the offers go in id order.
        let mut offered = Vec::new();
        for n in 0..ids.len() as u128 {
            let spec = InteractionSpec::new(InteractionId::from_u128(n + 1), Channel::Voice, "q");
            for e in router
                .handle(t, Command::CreateInteraction { spec })
                .unwrap()
            {
                if let EventKind::InteractionOffered { agent, .. } = e.kind {
                    offered.push(agent.as_str().to_string());
                }
            }
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(offered, sorted);
    }

    #[test]
    fn external_refs_keep_texts_with_the_same_hash_apart() {
        let id = InteractionId::from_u128;
        let mut refs = ExternalRefs::default();
        // Three texts forced into one hash, and one on its own.
        for (n, text) in ["a", "b", "c"].into_iter().enumerate() {
            refs.insert_hashed(7, Arc::from(text), id(n as u128));
        }
        refs.insert(Arc::from("d"), id(u128::MAX - 1));
        assert_eq!(refs.get_hashed(7, "a"), Some(id(0)));
        assert_eq!(refs.get_hashed(7, "b"), Some(id(1)));
        assert_eq!(refs.get_hashed(7, "c"), Some(id(2)));
        assert_eq!(refs.get_hashed(7, "d"), None);
        assert_eq!(refs.get("d"), Some(id(u128::MAX - 1)));
        assert!(!refs.contains_key("a"), "a is only under the forced hash");
        refs.insert_hashed(7, Arc::from("b"), id(5));
        assert_eq!(refs.get_hashed(7, "b"), Some(id(5)));
        assert_eq!(refs.collided.len(), 2);
        // Removing the text in the map's entry promotes one of the side list's.
        refs.remove_hashed(7, "a");
        refs.remove_hashed(7, "zz");
        assert_eq!(refs.get_hashed(7, "a"), None);
        assert_eq!(refs.get_hashed(7, "b"), Some(id(5)));
        assert_eq!(refs.get_hashed(7, "c"), Some(id(2)));
        assert_eq!(refs.collided.len(), 1);
        refs.remove_hashed(7, "c");
        assert_eq!(refs.get_hashed(7, "b"), Some(id(5)));
        refs.remove_hashed(7, "b");
        assert!(!refs.by_hash.contains_key(&7));
        assert!(refs.collided.is_empty());
        refs.remove("d");
        assert_eq!(refs.get("d"), None);
        assert!(refs.by_hash.is_empty());
        assert_eq!(std::mem::size_of::<(u64, ExternalEntry)>(), 40);
    }
}
