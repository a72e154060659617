//! The floor the router is measured against: a bare indexed matcher running the same cycle on
//! the same data, with nothing the router adds (no events, no explanations, no journal-ready
//! records, no string ids: agents and queues are indices). Per queue, the free eligible agents
//! ordered by idle time and the waiting interactions ordered by priority then arrival, both in
//! `BTreeSet`s, as a competent hand-written matcher would keep them.

use std::collections::BTreeSet;

/// The bare matcher.
pub struct Floor {
    /// Per agent: the queues it is eligible for.
    agent_queues: Vec<Vec<u32>>,
    /// Per agent: when it last became free (the idle-time key).
    idle_since: Vec<u64>,
    /// Per queue: free eligible agents, longest idle first.
    free: Vec<BTreeSet<(u64, u32)>>,
    /// Per queue: waiting interactions, `(priority reversed, arrival, id)`.
    waiting: Vec<BTreeSet<(u32, u64, u128)>>,
    now: u64,
    arrivals: u64,
}

impl Floor {
    /// `queues[q] = (skill, level)` required; `agents[a]` = its `(skill, level)` pairs. Every
    /// agent starts free.
    pub fn new(queues: &[(usize, u8)], agents: &[Vec<(usize, u8)>]) -> Floor {
        let mut floor = Floor {
            agent_queues: Vec::with_capacity(agents.len()),
            idle_since: vec![0; agents.len()],
            free: vec![BTreeSet::new(); queues.len()],
            waiting: vec![BTreeSet::new(); queues.len()],
            now: 1,
            arrivals: 0,
        };
        for (a, skills) in agents.iter().enumerate() {
            let eligible: Vec<u32> = queues
                .iter()
                .enumerate()
                .filter(|(_, (skill, level))| skills.iter().any(|(s, l)| s == skill && l >= level))
                .map(|(q, _)| q as u32)
                .collect();
            for &q in &eligible {
                floor.free[q as usize].insert((0, a as u32));
            }
            floor.agent_queues.push(eligible);
        }
        floor
    }

    /// An interaction arrives in `queue`: offered to the longest-idle free eligible agent (who
    /// is then busy), else it waits.
    pub fn arrive(&mut self, queue: usize, priority: u32, id: u128) -> Option<u32> {
        self.now += 1;
        self.arrivals += 1;
        if let Some(&(_, agent)) = self.free[queue].first() {
            let key = (self.idle_since[agent as usize], agent);
            for &q in &self.agent_queues[agent as usize] {
                self.free[q as usize].remove(&key);
            }
            return Some(agent);
        }
        self.waiting[queue].insert((u32::MAX - priority, self.arrivals, id));
        None
    }

    /// `agent` completes its work: it takes the best waiting interaction across its queues
    /// (returned), or becomes free.
    pub fn complete(&mut self, agent: u32) -> Option<u128> {
        self.now += 1;
        let a = agent as usize;
        let mut best: Option<(usize, (u32, u64, u128))> = None;
        for &q in &self.agent_queues[a] {
            if let Some(&head) = self.waiting[q as usize].first() {
                if best.is_none_or(|(_, b)| head < b) {
                    best = Some((q as usize, head));
                }
            }
        }
        if let Some((q, head)) = best {
            self.waiting[q].remove(&head);
            return Some(head.2);
        }
        self.idle_since[a] = self.now;
        for &q in &self.agent_queues[a] {
            self.free[q as usize].insert((self.now, agent));
        }
        None
    }

    /// Every free agent leaves (the router's bench logs out agents it could not make busy).
    pub fn clear_free(&mut self) {
        for free in &mut self.free {
            free.clear();
        }
    }

    /// Interactions waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.iter().map(BTreeSet::len).sum()
    }
}
