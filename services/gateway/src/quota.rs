//! The concurrent-job quota of an API key, shared by every gateway replica: a Redis
//! sorted set per key of its queued and running jobs, scored by each job's deadline.
//! Admission is one Lua script (drop the members past their deadline, then add the job
//! if the set is under the quota), so two replicas cannot both take the last slot. A
//! job's slot is released when its workflow ends, by whichever replica runs it; a job
//! that never reports its end (its workflow was terminated by hand) frees the slot at
//! its deadline. No crashed replica can leak a slot.

use redis::{Script, aio::ConnectionManager};

/// Why a job was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("this API key already has {running} jobs queued or running, its quota is {quota}")]
    Exhausted { running: u64, quota: u32 },
    #[error("the job quota in redis: {0}")]
    Redis(#[from] redis::RedisError),
}

#[derive(Clone)]
pub struct Quota {
    conn: ConnectionManager,
    prefix: String,
}

// KEYS[1] the key's set; ARGV: now_ms, job_id, deadline_ms, quota.
// Returns -1 when admitted (or already admitted), else the number of jobs running.
const ADMIT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then return -1 end
local running = redis.call('ZCARD', KEYS[1])
if running >= tonumber(ARGV[4]) then return running end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
return -1
";

impl Quota {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_string(),
        }
    }

    fn key(&self, owner: &str) -> String {
        format!("{}:quota:{owner}", self.prefix)
    }

    /// Takes a slot for `job_id` until `deadline_ms` unless `owner` has `quota` already.
    /// Taking it twice for one job is one slot.
    pub async fn admit(
        &self,
        owner: &str,
        job_id: &str,
        now_ms: i64,
        deadline_ms: i64,
        quota: u32,
    ) -> Result<(), QuotaError> {
        let mut conn = self.conn.clone();
        let running: i64 = Script::new(ADMIT)
            .key(self.key(owner))
            .arg(now_ms)
            .arg(job_id)
            .arg(deadline_ms)
            .arg(quota)
            .invoke_async(&mut conn)
            .await?;
        if running < 0 {
            Ok(())
        } else {
            Err(QuotaError::Exhausted {
                running: running as u64,
                quota,
            })
        }
    }

    /// Gives the slot of `job_id` back (nothing if it holds none).
    pub async fn release(&self, owner: &str, job_id: &str) -> Result<(), QuotaError> {
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(self.key(owner))
            .arg(job_id)
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }
}
