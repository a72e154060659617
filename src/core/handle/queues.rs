//! Commands about queues: configuration and removal.
//!
//! Each function validates its command fully before emitting anything: a refused command
//! changes nothing.

use super::super::error::RouteError;
use super::super::event::{Event, EventKind};
use super::super::model::{QueueConfig, QueueId, Timestamp};
use super::super::router::Router;

impl Router {
    /// Handles the `UpsertQueue` command.
    pub(in crate::core) fn handle_upsert_queue(
        &mut self,
        now: Timestamp,
        config: QueueConfig,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        self.validate_queue(&config)?;
        let q_id = config.id.clone();
        self.emit(
            out,
            now,
            EventKind::QueueUpserted {
                config: Box::new(config),
            },
        );
        self.rematch_queue(now, &q_id, out);
        Ok(())
    }

    /// Handles the `RemoveQueue` command.
    pub(in crate::core) fn handle_remove_queue(
        &mut self,
        now: Timestamp,
        queue: QueueId,
        out: &mut Vec<Event>,
    ) -> Result<(), RouteError> {
        let q = self.queue_idx(&queue)?;
        let open = self.queues[q as usize].open;
        if open > 0 {
            return Err(RouteError::QueueNotEmpty { queue, open });
        }
        if let Some(by) = self.queue_referrer(&queue) {
            return Err(RouteError::QueueInUse { queue, by });
        }
        self.emit(out, now, EventKind::QueueRemoved { queue });
        Ok(())
    }
}
