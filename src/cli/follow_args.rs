//! `kafkasnap backup --follow`'s flags: continuous backup, a checkpoint every interval.

use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::Args;

#[derive(Debug, Args)]
#[command(next_help_heading = "Continuous backup")]
pub struct FollowArgs {
    /// Keep backing up until stopped: publish a checkpoint (a complete, restorable backup
    /// holding every record read so far) every --checkpoint-interval. SIGTERM or Ctrl-C
    /// publishes a last checkpoint and exits 0; started again, it continues from the newest
    /// checkpoint at --to.
    #[arg(
        long,
        env = "KAFKASNAP_FOLLOW",
        value_parser = BoolishValueParser::new(),
        conflicts_with_all = ["shard", "shards", "shard_run"]
    )]
    pub follow: bool,
    /// With --follow: how often to publish a checkpoint, from 100ms to 24h [default: 60s].
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_checkpoint_interval,
        env = "KAFKASNAP_CHECKPOINT_INTERVAL",
        requires = "follow"
    )]
    pub checkpoint_interval: Option<Duration>,
    /// With --follow: one checkpoint in N lists every segment; the others list only what
    /// they added to the one before (restore reads back through at most N-1 of them),
    /// 1 to 1000 [default: 60].
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=1000),
        env = "KAFKASNAP_FULL_EVERY",
        requires = "follow"
    )]
    pub full_every: Option<u64>,
    /// With --follow: serve Prometheus metrics on /metrics and a health check on /healthz
    /// at this address (e.g. 127.0.0.1:9400; 0.0.0.0:9400 in a pod).
    #[arg(
        long,
        value_name = "ADDRESS",
        env = "KAFKASNAP_METRICS_LISTEN",
        value_parser = parse_listen_address,
        requires = "follow"
    )]
    pub metrics_listen: Option<String>,
}

/// How often a follower publishes a checkpoint when --checkpoint-interval is not given.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);
/// One checkpoint in this many lists every segment when --full-every is not given.
pub const DEFAULT_FULL_EVERY: u64 = 60;

fn parse_checkpoint_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if !(Duration::from_millis(100)..=Duration::from_secs(24 * 3600)).contains(&interval) {
        return Err(format!(
            "{text} is outside 100ms..24h: a checkpoint interval is seconds to hours (e.g. 60s)"
        ));
    }
    Ok(interval)
}

/// `HOST:PORT` (`[v6]:PORT` too); whether HOST resolves is found out when it is bound.
fn parse_listen_address(text: &str) -> Result<String, String> {
    let shape = "is not HOST:PORT (e.g. 127.0.0.1:9400, or 0.0.0.0:9400 in a pod)";
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} {shape}"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("{text:?} {shape}"));
    }
    Ok(text.to_string())
}
