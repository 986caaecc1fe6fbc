//! The broker-only baseline of a drain: the backlog's records sent by a producer in the harness
//! with outboxd's settings, without Postgres, to a fresh broker. How fast the broker alone takes
//! them.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use crate::broker::Broker;
use crate::drain::Backlog;
use crate::kafka::{max_in_flight_events, outboxd_like_producer};
use crate::postgres::pad_for;
use crate::system::proc_cpu;
use crate::Ctx;

#[derive(Debug, Clone, Serialize)]
pub struct BrokerOnly {
    pub seconds: f64,
    pub events_per_s: f64,
    pub broker_cpu_s: f64,
    pub max_in_flight: u64,
}

/// How fast the broker alone takes the backlog's records: a librdkafka producer with outboxd's
/// settings (its defaults plus `--kafka`), at most `max_in_flight_events` unacknowledged, sends N
/// records shaped like outboxd's (key `agg-<n % 1000>`, an `id` header, the same payload size) to a
/// fresh broker. The producer loop blocks the (single-threaded) runtime: nothing else runs then.
pub async fn broker_only(
    ctx: &Ctx<'_>,
    b: &Backlog<'_>,
    payload_bytes: usize,
    run: usize,
) -> Result<BrokerOnly> {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::BaseRecord;
    let args = ctx.args;
    let broker = Broker::start(ctx, &format!("{}-{run}-broker-only", b.name)).await?;
    let rt_topic = b.topic.to_string();
    broker.create_topic(&rt_topic, args.partitions).await?;
    let max_in_flight = max_in_flight_events(args);
    let producer = outboxd_like_producer(args, &broker.bootstrap)?;
    let pad = "x".repeat(pad_for(payload_bytes));
    let broker_cpu0 = broker.pid().and_then(proc_cpu).unwrap_or(0.0);
    let started = Instant::now();
    for i in 0..b.rows {
        let key = format!("agg-{}", i % 1000);
        let id = format!("00000000-0000-4000-8000-{i:012}");
        let value = format!("{{\"ts\": 1700000000000000, \"pad\": \"{pad}\", \"seq\": {i}}}");
        loop {
            while producer.in_flight_count() as u64 >= max_in_flight {
                producer.poll(Duration::from_millis(1));
            }
            let record = BaseRecord::to(&rt_topic).key(&key).payload(&value).headers(
                OwnedHeaders::new().insert(Header {
                    key: "id",
                    value: Some(&id),
                }),
            );
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("broker-only producer: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
        if started.elapsed() > Duration::from_secs(args.drain_timeout_secs) {
            bail!("broker-only baseline did not finish in time");
        }
    }
    producer
        .flush(Duration::from_secs(args.drain_timeout_secs))
        .context("broker-only producer flush")?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(BrokerOnly {
        seconds,
        events_per_s: b.rows as f64 / seconds,
        broker_cpu_s: broker.pid().and_then(proc_cpu).unwrap_or(0.0) - broker_cpu0,
        max_in_flight,
    })
}
