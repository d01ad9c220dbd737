//! A job's event stream in Redis (`{prefix}:job:{id}:events`, a Redis stream): state
//! changes, stage status and progress, in order, each with the stream entry id as its
//! event id, so a watcher resumes exactly after the last event it saw. Progress is too
//! chatty for the workflow's history; this is where it goes. The stream expires with
//! the job's retention.

use prost::Message;
use redis::{AsyncCommands, Client, aio::ConnectionManager, streams::StreamReadReply};
use std::time::Duration;
use storyreel_proto::gateway::{JobEvent, job_event::Payload};

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("job events in redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("`resume_after` must be an event id of this job (like 1733312345000-0), got `{0}`")]
    BadCursor(String),
}

/// Appends and reads job event streams.
#[derive(Clone)]
pub struct EventLog {
    client: Client,
    conn: ConnectionManager,
    prefix: String,
    retention: Duration,
}

impl EventLog {
    pub async fn connect(client: Client, prefix: &str, retention: Duration) -> Result<Self, EventsError> {
        let conn = ConnectionManager::new(client.clone()).await?;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_string(),
            retention,
        })
    }

    fn key(&self, job_id: &str) -> String {
        format!("{}:job:{job_id}:events", self.prefix)
    }

    /// Appends `payload` to the job's stream; returns its event id.
    pub async fn append(&self, job_id: &str, payload: Payload) -> Result<String, EventsError> {
        let event = JobEvent {
            job_id: job_id.to_string(),
            payload: Some(payload),
            ..Default::default()
        };
        let key = self.key(job_id);
        let mut conn = self.conn.clone();
        let (id, _): (String, bool) = redis::pipe()
            .atomic()
            .xadd(&key, "*", &[("e", event.encode_to_vec())])
            .expire(&key, self.retention.as_secs() as i64)
            .query_async(&mut conn)
            .await?;
        Ok(id)
    }

    /// Id of the job's last event, if any.
    pub async fn last_id(&self, job_id: &str) -> Result<Option<String>, EventsError> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply =
            conn.xrevrange_count(self.key(job_id), "+", "-", 1).await?;
        Ok(reply.ids.first().map(|e| e.id.clone()))
    }

    /// A reader on its own connection (a blocking read would hold up a shared one).
    pub async fn reader(&self, job_id: &str, after: &str) -> Result<EventReader, EventsError> {
        check_cursor(after)?;
        // A blocking read waits longer than a command's default response timeout.
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(60)));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(EventReader {
            conn,
            key: self.key(job_id),
            cursor: after.to_string(),
        })
    }
}

/// `ms-seq`, the shape of a Redis stream id, or `0` for the beginning.
fn check_cursor(cursor: &str) -> Result<(), EventsError> {
    let ok = cursor == "0"
        || cursor
            .split_once('-')
            .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok());
    if ok {
        Ok(())
    } else {
        Err(EventsError::BadCursor(cursor.to_string()))
    }
}

/// Reads one job's events in order, from a cursor on.
pub struct EventReader {
    conn: redis::aio::MultiplexedConnection,
    key: String,
    cursor: String,
}

impl EventReader {
    /// The events after the cursor, waiting up to `wait` for the first; empty when none
    /// came. Each event carries its id and time.
    pub async fn next_batch(&mut self, wait: Duration) -> Result<Vec<JobEvent>, EventsError> {
        let options = redis::streams::StreamReadOptions::default()
            .block(wait.as_millis() as usize)
            .count(256);
        let reply: Option<StreamReadReply> = self
            .conn
            .xread_options(&[&self.key], &[&self.cursor], &options)
            .await?;
        let mut events = Vec::new();
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in stream.ids {
                self.cursor = entry.id.clone();
                let Some(redis::Value::BulkString(bytes)) = entry.map.get("e") else {
                    continue;
                };
                let Ok(mut event) = JobEvent::decode(bytes.as_slice()) else {
                    continue;
                };
                let ms: i64 = entry
                    .id
                    .split('-')
                    .next()
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(0);
                event.time = Some(crate::jobs::view::timestamp_ms(ms));
                event.event_id = entry.id;
                events.push(event);
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_stream_ids() {
        assert!(check_cursor("0").is_ok());
        assert!(check_cursor("1733312345000-3").is_ok());
        for bad in ["", "abc", "12-", "-1", "1-2-3", "$"] {
            assert!(check_cursor(bad).is_err(), "{bad}");
        }
    }
}
