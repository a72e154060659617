//! `Supervisor`: agents, skills and queues changed live; the waiting line; reprioritise, move,
//! force-assign and explain an interaction; real-time statistics.

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::core::{
    AgentId, Command, ContactId, InteractionPhase, QueueId, Router, Timestamp, TransferTarget,
};
use crate::engine::{run_wakeups, Clock, Engine, SystemClock};
use crate::store::Role;

use super::auth::caller;
use super::bounds::Bounded;
use super::calls;
use super::convert::{self, interaction_id, required};
use super::history::History;
use super::proto as pb;
use super::proto::supervisor_server::Supervisor;
use super::stats::{live_queues, queue_stats_pb, LiveStats};

const SUPERVISOR_ROLES: &[Role] = &[Role::Supervisor, Role::Admin];

/// How long the waiting line's stream waits for a change before sending the line again anyway.
const LINE_REFRESH: Duration = Duration::from_secs(3600);

/// The `Supervisor` service.
#[derive(Debug, Clone)]
pub struct SupervisorService {
    engine: Engine,
    stats: LiveStats,
    history: History,
    ivr: Option<crate::channels::voice::IvrTrees>,
}

impl SupervisorService {
    /// The service over `engine`, with the day's counters from `stats`; erasures also clear
    /// the contact from `history`.
    pub fn new(engine: Engine, stats: LiveStats, history: History) -> Self {
        SupervisorService {
            engine,
            stats,
            history,
            ivr: None,
        }
    }

    /// The same service, managing the phone channel's IVR trees too.
    pub fn with_ivr(mut self, trees: crate::channels::voice::IvrTrees) -> Self {
        self.ivr = Some(trees);
        self
    }

    fn ivr(&self) -> Result<&crate::channels::voice::IvrTrees, Status> {
        self.ivr
            .as_ref()
            .ok_or_else(|| Status::unimplemented("this server runs without the phone channel"))
    }
}

/// The waiting lines of the given queues (all when empty), computed on the router.
/// The open interactions with short reference `reference` (in the queues `only`, or all), as
/// queue lines: one page.
fn found_lines(
    r: &Router,
    only: &[QueueId],
    reference: crate::core::Reference,
) -> pb::ListWaitingResponse {
    let mut lines: Vec<pb::QueueLine> = Vec::new();
    for v in r
        .find_by_reference(reference)
        .iter()
        .filter_map(|id| r.interaction(id))
        .filter(|v| only.is_empty() || only.contains(&v.queue))
    {
        let queue = v.queue.to_string();
        let at = match lines.iter().position(|l| l.queue == queue) {
            Some(at) => at,
            None => {
                lines.push(pb::QueueLine {
                    queue,
                    ..Default::default()
                });
                lines.len() - 1
            }
        };
        let line = &mut lines[at];
        if matches!(v.phase, InteractionPhase::Waiting) {
            line.waiting.push(convert::interaction_pb(&v));
            line.waiting_total += 1;
        } else {
            line.in_progress.push(convert::interaction_pb(&v));
            line.in_progress_total += 1;
        }
    }
    pb::ListWaitingResponse {
        lines,
        next_page_token: String::new(),
    }
}

fn lines(
    r: &Router,
    only: &[QueueId],
    page: super::limits::Page,
) -> Result<pb::ListWaitingResponse, Status> {
    let queues = r.queues();
    for q in only {
        if !queues.iter().any(|v| &v.config.id == q) {
            return Err(Status::not_found(format!("unknown queue {q}")));
        }
    }
    let all = r.interactions();
    let mut lines = Vec::new();
    let mut more = false;
    for q in queues {
        let id = &q.config.id;
        if !only.is_empty() && !only.contains(id) {
            continue;
        }
        // One page of the line: waiting ones in serving order, then those held by agents.
        let waiting_ids = r.waiting_in_queue(id);
        let held: Vec<_> = all
            .iter()
            .filter(|v| &v.queue == id && !matches!(v.phase, InteractionPhase::Waiting))
            .collect();
        let total = waiting_ids.len() + held.len();
        more |= total > page.offset + page.size;
        let waiting: Vec<pb::Interaction> = waiting_ids
            .iter()
            .skip(page.offset)
            .take(page.size)
            .filter_map(|i| r.interaction(i))
            .map(|v| convert::interaction_pb(&v))
            .collect();
        let left = page.size - waiting.len().min(page.size);
        let held_from = page.offset.saturating_sub(waiting_ids.len());
        let in_progress = held
            .iter()
            .skip(held_from)
            .take(left)
            .map(|v| convert::interaction_pb(v))
            .collect();
        lines.push(pb::QueueLine {
            queue: id.to_string(),
            waiting,
            in_progress,
            waiting_total: u32::try_from(waiting_ids.len()).unwrap_or(u32::MAX),
            in_progress_total: u32::try_from(held.len()).unwrap_or(u32::MAX),
        });
    }
    let next_page_token = if more {
        page.next_token()
    } else {
        String::new()
    };
    Ok(pb::ListWaitingResponse {
        lines,
        next_page_token,
    })
}

fn queue_ids(list: &[String]) -> Result<Vec<QueueId>, Status> {
    super::limits::queues("queues", list)?;
    list.iter()
        .map(|q| required("queues", q).map(QueueId::new))
        .collect()
}

type WaitingStream = Pin<Box<dyn Stream<Item = Result<pb::ListWaitingResponse, Status>> + Send>>;
type StatsStream = Pin<Box<dyn Stream<Item = Result<pb::StatsUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl Supervisor for SupervisorService {
    async fn upsert_agent(
        &self,
        request: Request<pb::UpsertAgentRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let agent = request
            .get_ref()
            .agent
            .as_ref()
            .ok_or_else(|| convert::invalid("agent is required"))?;
        super::limits::agent(agent)?;
        let config = convert::agent_config(agent)?;
        let id = config.id.clone();
        let command = Command::UpsertAgent { config };
        Ok(Response::new(
            calls::run_then_agent(&self.engine, command, id).await?,
        ))
    }

    async fn remove_agent(
        &self,
        request: Request<pb::RemoveAgentRequest>,
    ) -> Result<Response<pb::RemoveResponse>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let agent = AgentId::new(required("agent_id", &request.get_ref().agent_id)?);
        calls::run(&self.engine, Command::RemoveAgent { agent }).await?;
        Ok(Response::new(pb::RemoveResponse {}))
    }

    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        let req = request.get_ref();
        req.check_bounds()?;
        let agents = self
            .engine
            .read(|r| {
                r.agents()
                    .iter()
                    .map(convert::agent_status_pb)
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(Status::from)?;
        let (agents, next_page_token) = super::limits::page_by_key(
            agents,
            |a| a.agent.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
            req.page_size,
            &req.page_token,
        )?;
        Ok(Response::new(pb::ListAgentsResponse {
            agents,
            next_page_token,
        }))
    }

    async fn set_agent_skills(
        &self,
        request: Request<pb::SetAgentSkillsRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let req = request.get_ref();
        let agent = AgentId::new(required("agent_id", &req.agent_id)?);
        let skills = convert::skills(&req.skills)?;
        let command = Command::SetAgentSkills {
            agent: agent.clone(),
            skills,
        };
        Ok(Response::new(
            calls::run_then_agent(&self.engine, command, agent).await?,
        ))
    }

    async fn set_capacity(
        &self,
        request: Request<pb::SetCapacityRequest>,
    ) -> Result<Response<pb::AgentStatus>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let req = request.get_ref();
        let agent = AgentId::new(required("agent_id", &req.agent_id)?);
        let capacity = convert::capacity(
            req.capacity
                .as_ref()
                .ok_or_else(|| convert::invalid("capacity is required"))?,
        )?;
        let command = Command::SetCapacity {
            agent: agent.clone(),
            capacity,
        };
        Ok(Response::new(
            calls::run_then_agent(&self.engine, command, agent).await?,
        ))
    }

    async fn upsert_queue(
        &self,
        request: Request<pb::UpsertQueueRequest>,
    ) -> Result<Response<pb::Queue>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let queue = request
            .get_ref()
            .queue
            .as_ref()
            .ok_or_else(|| convert::invalid("queue is required"))?;
        super::limits::queue(queue)?;
        let config = convert::queue_config(queue)?;
        let reply = convert::queue_pb(&config);
        calls::run(&self.engine, Command::UpsertQueue { config }).await?;
        Ok(Response::new(reply))
    }

    async fn remove_queue(
        &self,
        request: Request<pb::RemoveQueueRequest>,
    ) -> Result<Response<pb::RemoveResponse>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let queue = QueueId::new(required("queue_id", &request.get_ref().queue_id)?);
        // No IVR version is stored or activated while the queue goes: none can name it after.
        let _held = match &self.ivr {
            Some(trees) => Some(
                trees
                    .hold_for_queue_removal(&queue)
                    .await
                    .map_err(super::ivr::tree_status)?,
            ),
            None => None,
        };
        calls::run(&self.engine, Command::RemoveQueue { queue }).await?;
        Ok(Response::new(pb::RemoveResponse {}))
    }

    async fn list_queues(
        &self,
        request: Request<pb::ListQueuesRequest>,
    ) -> Result<Response<pb::ListQueuesResponse>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        let req = request.get_ref();
        req.check_bounds()?;
        let queues = self
            .engine
            .read(|r| {
                r.queues()
                    .iter()
                    .map(|q| convert::queue_pb(&q.config))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(Status::from)?;
        let (queues, next_page_token) =
            super::limits::page_by_key(queues, |q| q.id.clone(), req.page_size, &req.page_token)?;
        Ok(Response::new(pb::ListQueuesResponse {
            queues,
            next_page_token,
        }))
    }

    async fn list_waiting(
        &self,
        request: Request<pb::ListWaitingRequest>,
    ) -> Result<Response<pb::ListWaitingResponse>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let only = queue_ids(&request.get_ref().queues)?;
        let page =
            super::limits::Page::new(request.get_ref().page_size, &request.get_ref().page_token)?;
        let reference = request.get_ref().reference.trim();
        if !reference.is_empty() {
            let reference = crate::core::Reference::parse(reference).ok_or_else(|| {
                convert::invalid(
                    "reference is not a request's short reference: 10 characters of Crockford \
                     base32 (XXXXX-XXXXX), as shown to the citizen",
                )
            })?;
            let reply = self
                .engine
                .read(move |r| found_lines(r, &only, reference))
                .await
                .map_err(Status::from)?;
            return Ok(Response::new(reply));
        }
        let reply = self
            .engine
            .read(move |r| lines(r, &only, page))
            .await
            .map_err(Status::from)??;
        Ok(Response::new(reply))
    }

    type WatchWaitingStream = WaitingStream;

    async fn watch_waiting(
        &self,
        request: Request<pb::WatchWaitingRequest>,
    ) -> Result<Response<Self::WatchWaitingStream>, Status> {
        let credential = super::auth::credential(&request);
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let req = request.into_inner();
        let only = queue_ids(&req.queues)?;
        // The first entries of each line, and the totals.
        let page = super::limits::Page::new(req.max_per_queue, "")?;
        let interval = Duration::from_millis(u64::from(if req.min_interval_ms == 0 {
            500
        } else {
            req.min_interval_ms.max(50)
        }));
        let engine = self.engine.clone();
        // A view of committed events that wakes the stream (the runner owns the subscription,
        // the lag and the shutdown: a change is never missed).
        let changes = run_wakeups(&engine, "watch_waiting", |_| true)
            .await
            .map_err(Status::from)?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            // Send the line, wait at least `interval`, then wait for the next committed change.
            loop {
                let only = only.clone();
                let reply = match engine.read(move |r| lines(r, &only, page)).await {
                    Ok(reply) => reply,
                    Err(e) => Err(Status::from(e)),
                };
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    break;
                }
                tokio::time::sleep(interval).await;
                tokio::select! {
                    going_on = changes.wait(LINE_REFRESH) => if !going_on {
                        let _ = tx.send(Err(Status::unavailable("the server is shutting down"))).await;
                        break;
                    },
                    _ = tx.closed() => break,
                }
            }
            changes.handle().stop().await;
        });
        Ok(Response::new(super::auth::guard(
            credential,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn reprioritise(
        &self,
        request: Request<pb::ReprioritiseRequest>,
    ) -> Result<Response<pb::Interaction>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let req = request.get_ref();
        let id = interaction_id("interaction_id", &req.interaction_id)?;
        let command = Command::ChangePriority {
            interaction: id,
            priority: req.priority,
        };
        Ok(Response::new(
            calls::run_then_interaction(&self.engine, command, id).await?,
        ))
    }

    async fn r#move(
        &self,
        request: Request<pb::MoveRequest>,
    ) -> Result<Response<pb::Interaction>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let req = request.get_ref();
        let id = interaction_id("interaction_id", &req.interaction_id)?;
        let queue = QueueId::new(required("queue", &req.queue)?);
        let command = Command::Transfer {
            interaction: id,
            to: TransferTarget::Queue { queue },
            by: None,
            note: None,
        };
        Ok(Response::new(
            calls::run_then_interaction(&self.engine, command, id).await?,
        ))
    }

    async fn force_assign(
        &self,
        request: Request<pb::ForceAssignRequest>,
    ) -> Result<Response<pb::Interaction>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let req = request.get_ref();
        let id = interaction_id("interaction_id", &req.interaction_id)?;
        let agent = AgentId::new(required("agent_id", &req.agent_id)?);
        let command = Command::Transfer {
            interaction: id,
            to: TransferTarget::Agent { agent },
            by: None,
            note: None,
        };
        Ok(Response::new(
            calls::run_then_interaction(&self.engine, command, id).await?,
        ))
    }

    async fn explain(
        &self,
        request: Request<pb::ExplainRequest>,
    ) -> Result<Response<pb::Explanation>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let id = interaction_id("interaction_id", &request.get_ref().interaction_id)?;
        let now = SystemClock.now();
        let explanation = self
            .engine
            .read(move |r| r.explain_at(&id, now))
            .await
            .map_err(Status::from)?
            .ok_or_else(|| Status::not_found(format!("no open interaction {id}")))?;
        Ok(Response::new(pb::Explanation {
            interaction: Some(convert::interaction_pb(&explanation.interaction)),
            strategy: convert::strategy_pb(explanation.strategy),
            alternatives: explanation
                .requirements
                .iter()
                .map(|set| pb::RequirementSet {
                    requirements: set
                        .iter()
                        .map(|r| pb::Requirement {
                            skill: r.skill.to_string(),
                            min_level: u32::from(r.min_level),
                        })
                        .collect(),
                })
                .collect(),
            preferred: explanation.preferred.clone(),
            eligible_agents: explanation.eligible_agents,
            free_agents: explanation.free_agents,
            declined_by: explanation
                .interaction
                .declined_by
                .iter()
                .map(ToString::to_string)
                .collect(),
            text: explanation.summary.clone(),
        }))
    }

    async fn erase_contact(
        &self,
        request: Request<pb::EraseContactRequest>,
    ) -> Result<Response<pb::EraseContactResponse>, Status> {
        caller(&request)?.require(&[Role::Admin])?;
        request.get_ref().check_bounds()?;
        let contact = ContactId::new(required("contact", &request.get_ref().contact)?);
        let erased = self
            .engine
            .erase_contact(contact.clone())
            .await
            .map_err(Status::from)?;
        self.history.forget(&contact);
        tracing::info!(
            interactions = erased.interactions.len(),
            "contact erased on request"
        );
        Ok(Response::new(pb::EraseContactResponse {
            interaction_ids: erased
                .interactions
                .iter()
                .map(ToString::to_string)
                .collect(),
            journal_rows: erased.journal_rows,
            snapshots: erased.snapshots,
        }))
    }

    async fn get_satisfaction(
        &self,
        request: Request<pb::GetSatisfactionRequest>,
    ) -> Result<Response<pb::Satisfaction>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let req = request.into_inner();
        if req.from_unix_ms < 0 || req.to_unix_ms < 0 {
            return Err(convert::invalid(
                "from_unix_ms and to_unix_ms must be Unix milliseconds (0 for the default)",
            ));
        }
        let now = SystemClock.now();
        let to = match req.to_unix_ms {
            0 => Timestamp(now.0 + 1),
            t => Timestamp(t as u64),
        };
        let from = match req.from_unix_ms {
            0 => Timestamp(to.0.saturating_sub(30 * 86_400_000)),
            f => Timestamp(f as u64),
        };
        if from >= to {
            return Err(convert::invalid("from_unix_ms must come before to_unix_ms"));
        }
        let agent = (!req.agent_id.is_empty()).then(|| AgentId::new(&req.agent_id));
        let limit = match req.max_comments {
            0 => 50,
            n => n.min(500) as usize,
        };
        let (summary, comments) = self
            .engine
            .store()
            .run(move |store| {
                let summary = store.survey_summary_by_agent(from, to)?;
                let comments = store.survey_comments(from, to, agent.as_ref(), limit)?;
                Ok::<_, crate::store::StoreError>((
                    summary
                        .into_iter()
                        .filter(|(a, _)| agent.is_none() || a.as_ref() == agent.as_ref())
                        .collect::<Vec<_>>(),
                    comments,
                ))
            })
            .await
            .map_err(Status::from)?;
        let (mut answers, mut total) = (0, 0);
        let agents = summary
            .iter()
            .map(|(agent, s)| {
                answers += s.answers;
                total += s.score_total;
                pb::AgentSatisfaction {
                    agent_id: agent.as_ref().map(ToString::to_string).unwrap_or_default(),
                    answers: s.answers,
                    average: s.average().unwrap_or(0.0),
                }
            })
            .collect();
        Ok(Response::new(pb::Satisfaction {
            agents,
            answers,
            average: if answers > 0 {
                total as f64 / answers as f64
            } else {
                0.0
            },
            comments: comments
                .into_iter()
                .map(|c| pb::SurveyComment {
                    interaction_id: c.interaction.to_string(),
                    agent_id: c.agent.map(|a| a.to_string()).unwrap_or_default(),
                    queue: c.queue.to_string(),
                    channel: convert::channel_pb(c.channel),
                    score: u32::from(c.score),
                    comment: c.comment.unwrap_or_default(),
                    at_unix_ms: c.at.0 as i64,
                })
                .collect(),
        }))
    }

    type WatchStatsStream = StatsStream;

    async fn watch_stats(
        &self,
        request: Request<pb::WatchStatsRequest>,
    ) -> Result<Response<Self::WatchStatsStream>, Status> {
        let credential = super::auth::credential(&request);
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let req = request.into_inner();
        let only = queue_ids(&req.queues)?;
        let interval = Duration::from_millis(u64::from(if req.interval_ms == 0 {
            1000
        } else {
            req.interval_ms.max(100)
        }));
        let engine = self.engine.clone();
        let stats = self.stats.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = tx.closed() => break,
                }
                let now: Timestamp = SystemClock.now();
                let only = only.clone();
                let live = match engine.read(move |r| live_queues(r, &only, now)).await {
                    Ok(live) => live,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        break;
                    }
                };
                let update = pb::StatsUpdate {
                    at_unix_ms: convert::ms(now),
                    queues: live
                        .iter()
                        .map(|l| queue_stats_pb(l, &stats.today_by_channel(&l.queue, now)))
                        .collect(),
                };
                if tx.send(Ok(update)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(super::auth::guard(
            credential,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn put_ivr_version(
        &self,
        request: Request<pb::PutIvrVersionRequest>,
    ) -> Result<Response<pb::IvrVersion>, Status> {
        let caller = caller(&request)?;
        request.get_ref().check_bounds()?;
        caller.require(SUPERVISOR_ROLES)?;
        let author = caller.author();
        let version = super::ivr::put(self.ivr()?, request.into_inner(), author).await?;
        Ok(Response::new(version))
    }

    async fn validate_ivr_tree(
        &self,
        request: Request<pb::ValidateIvrTreeRequest>,
    ) -> Result<Response<pb::ValidateIvrTreeResponse>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        Ok(Response::new(
            super::ivr::validate(self.ivr()?, request.get_ref()).await?,
        ))
    }

    async fn activate_ivr_version(
        &self,
        request: Request<pb::ActivateIvrVersionRequest>,
    ) -> Result<Response<pb::IvrVersion>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let version = super::ivr::activate(self.ivr()?, request.get_ref()).await?;
        Ok(Response::new(version))
    }

    async fn list_ivr_versions(
        &self,
        request: Request<pb::ListIvrVersionsRequest>,
    ) -> Result<Response<pb::ListIvrVersionsResponse>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        Ok(Response::new(
            super::ivr::list(self.ivr()?, request.get_ref()).await?,
        ))
    }

    async fn get_ivr_version(
        &self,
        request: Request<pb::GetIvrVersionRequest>,
    ) -> Result<Response<pb::IvrVersionTree>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        Ok(Response::new(
            super::ivr::get(self.ivr()?, request.get_ref()).await?,
        ))
    }

    async fn rollback_ivr(
        &self,
        request: Request<pb::RollbackIvrRequest>,
    ) -> Result<Response<pb::IvrVersion>, Status> {
        caller(&request)?.require(SUPERVISOR_ROLES)?;
        request.get_ref().check_bounds()?;
        let version = super::ivr::rollback(self.ivr()?, request.get_ref()).await?;
        Ok(Response::new(version))
    }
}
