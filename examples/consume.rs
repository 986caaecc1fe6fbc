//! A small Kafka reader for demos and debugging:
//!
//! ```text
//! cargo run --example consume -- --bootstrap 127.0.0.1:9092 --topic outbox.event.order \
//!     [--topic outbox.event.customer] --count 5 --timeout-secs 30
//! ```
//!
//! Prints one line per record: `topic partition offset key headers value`. Never joins a
//! consumer group (slow on tansu): it assigns every partition of every topic from the beginning,
//! waiting for topics that do not exist yet. Exits 0 once `--count` records were read, 1 if the
//! timeout passed first.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[derive(Parser, Debug)]
#[command(about = "Read records from Kafka topics by partition assignment and print them")]
struct Args {
    /// bootstrap.servers, e.g. 127.0.0.1:9092
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    bootstrap: String,
    /// Topic to read (repeatable)
    #[arg(long = "topic", required = true)]
    topics: Vec<String>,
    /// Stop after this many records (across all topics)
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

fn text(bytes: Option<&[u8]>) -> String {
    match bytes {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => "null".to_string(),
    }
}

fn main() {
    let args = Args::parse();
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set(
            "group.id",
            format!("outboxd-consume-example-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        .set("log_level", "3")
        .create()
        .expect("create consumer");

    // Wait until every topic exists, then assign all their partitions from the beginning.
    let mut tpl = TopicPartitionList::new();
    let mut pending: BTreeSet<&str> = args.topics.iter().map(String::as_str).collect();
    while !pending.is_empty() {
        for topic in pending.clone() {
            let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(3)) else {
                continue;
            };
            if let Some(t) = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            {
                for p in t.partitions() {
                    tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                        .expect("add partition");
                }
                pending.remove(topic);
            }
        }
        if !pending.is_empty() {
            if Instant::now() >= deadline {
                eprintln!("timeout: topic(s) {pending:?} do not exist");
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    consumer.assign(&tpl).expect("assign partitions");

    let mut n = 0;
    while n < args.count {
        if Instant::now() >= deadline {
            eprintln!("timeout: read {n} of {} record(s)", args.count);
            std::process::exit(1);
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let headers: Vec<String> = m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| format!("{}={}", h.key, text(h.value)))
                            .collect()
                    })
                    .unwrap_or_default();
                println!(
                    "topic={} partition={} offset={} key={} headers={{{}}} value={}",
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    text(m.key()),
                    headers.join(","),
                    text(m.payload())
                );
                n += 1;
            }
            Some(Err(e)) => eprintln!("consume error (retrying): {e}"),
            None => {}
        }
    }
}
