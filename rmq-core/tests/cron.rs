//! Cron schedules against a real Redis (and the shared cluster): one run per
//! occurrence whoever ticks, keyed by UTC instant across both
//! daylight-saving transitions, the catch-up and overlap policies, pause,
//! resume and trigger.
//!
//! Schedules are computed on a shifted clock (Redis `TIME` plus an offset
//! that makes it read a chosen date), so a test sets a schedule "at" one
//! instant and fires it "at" a later one without waiting.

#[macro_use]
mod support;

use std::time::Duration;

use chrono::DateTime;
use redis::AsyncCommands;
use rmq_core::broker::{Fired, RunSpec, ScheduleInfo, ScheduleSpec};
use rmq_core::envelope::Envelope;
use rmq_core::{Broker, CatchUp, CronClock, Error, Overlap, Priority};
use support::{Deployment, Env};

const RUN: RunSpec = RunSpec {
    priority: Priority::Normal,
    ttl: None,
    max_retries: 0,
};

fn at(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .timestamp_millis()
}

fn spec(expression: &str, tz: &str, overlap: Overlap, catch_up: CatchUp) -> ScheduleSpec {
    ScheduleSpec {
        overlap,
        catch_up,
        ..ScheduleSpec::new(expression, tz)
    }
}

fn clock_at(broker: &Broker, virtual_ms: i64) -> CronClock {
    CronClock::shifted(broker.server_now_ms(), virtual_ms)
}

/// Sets schedule `name` of `topic` as if the time were `when`.
async fn set_at(env: &Env, topic: &str, name: &str, spec: &ScheduleSpec, when: &str) -> i64 {
    let clock = clock_at(&env.broker, at(when));
    env.broker
        .set_schedule(topic, name, spec, b"payload", clock)
        .await
        .expect("set the schedule")
}

async fn schedule(broker: &Broker, topic: &str, name: &str) -> ScheduleInfo {
    broker
        .schedules(topic)
        .await
        .expect("list schedules")
        .into_iter()
        .find(|s| s.name == name)
        .expect("the schedule exists")
}

/// Fires schedule `name` on `broker` as if the time were `when`.
async fn fire_at(broker: &Broker, topic: &str, name: &str, when: &str) -> Fired {
    let schedule = schedule(broker, topic, name).await;
    broker
        .fire_due(&schedule, &RUN, clock_at(broker, at(when)))
        .await
        .expect("fire the schedule")
}

/// The ids of the jobs pending on `topic` (normal priority), in order.
async fn pending_ids(env: &Env, topic: &str) -> Vec<String> {
    let mut raw = env.raw().await;
    let entries: Vec<Vec<u8>> = raw
        .lrange(&env.keys(topic).pending[1], 0, -1)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|bytes| {
            let envelope = Envelope::parse(bytes).expect("an envelope");
            assert!(envelope.has_explicit_id());
            assert_eq!(envelope.payload(), b"payload");
            envelope.id().to_owned()
        })
        .collect()
}

fn ids(name: &str, instants: &[&str]) -> Vec<String> {
    instants
        .iter()
        .map(|t| format!("cron:{name}:{}", at(t)))
        .collect()
}

const ALL_DAY: CatchUp = CatchUp::All {
    within: Duration::from_secs(24 * 3600),
};

on_both!(
    spring_forward_runs_each_utc_instant_once,
    ["spring"],
    |env| {
        // Europe/Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let every = spec("0 */30 * * * *", "Europe/Berlin", Overlap::Allow, ALL_DAY);
        let next = set_at(
            &env,
            "spring",
            "half-hourly",
            &every,
            "2026-03-29T00:00:00Z",
        )
        .await;
        assert_eq!(next, at("2026-03-29T00:30:00Z"));
        let fired = fire_at(&env.broker, "spring", "half-hourly", "2026-03-29T03:10:00Z").await;
        assert_eq!(fired.fired, 6, "{fired:?}");
        let fixed = spec("0 30 2 * * *", "Europe/Berlin", Overlap::Allow, ALL_DAY);
        set_at(&env, "spring", "nightly", &fixed, "2026-03-28T12:00:00Z").await;
        let fired = fire_at(&env.broker, "spring", "nightly", "2026-03-29T03:10:00Z").await;
        assert_eq!(fired.fired, 1, "{fired:?}");

        let mut want = ids(
            "half-hourly",
            &[
                "2026-03-29T00:30:00Z", // 01:30 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST: 02:00 and 02:30 do not exist
                "2026-03-29T01:30:00Z",
                "2026-03-29T02:00:00Z",
                "2026-03-29T02:30:00Z",
                "2026-03-29T03:00:00Z",
            ],
        );
        // 02:30 does not exist that night: the nightly run is at 03:00 CEST.
        want.extend(ids("nightly", &["2026-03-29T01:00:00Z"]));
        assert_eq!(pending_ids(&env, "spring").await, want);
        let nightly = schedule(&env.broker, "spring", "nightly").await;
        assert_eq!(nightly.next_ms, Some(at("2026-03-30T00:30:00Z")));
        assert_eq!(nightly.last_ms, Some(at("2026-03-29T01:00:00Z")));
    }
);

on_both!(
    fall_back_runs_both_passes_of_the_repeated_hour,
    ["fall"],
    |env| {
        // Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC).
        let every = spec("0 */30 * * * *", "Europe/Berlin", Overlap::Allow, ALL_DAY);
        set_at(&env, "fall", "half-hourly", &every, "2026-10-24T23:45:00Z").await;
        let fixed = spec("0 30 2 * * *", "Europe/Berlin", Overlap::Allow, ALL_DAY);
        set_at(&env, "fall", "nightly", &fixed, "2026-10-24T12:00:00Z").await;
        // Fired in two steps, the second inside the repeated hour.
        for when in ["2026-10-25T00:40:00Z", "2026-10-25T02:40:00Z"] {
            fire_at(&env.broker, "fall", "half-hourly", when).await;
            fire_at(&env.broker, "fall", "nightly", when).await;
        }
        let mut want = ids(
            "half-hourly",
            &["2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z"], // 02:00, 02:30 CEST
        );
        want.extend(ids("nightly", &["2026-10-25T00:30:00Z"])); // 02:30 CEST, once
        want.extend(ids(
            "half-hourly",
            &[
                "2026-10-25T01:00:00Z", // 02:00 CET, the second pass
                "2026-10-25T01:30:00Z", // 02:30 CET
                "2026-10-25T02:00:00Z",
                "2026-10-25T02:30:00Z",
            ],
        ));
        assert_eq!(pending_ids(&env, "fall").await, want);
        let nightly = schedule(&env.broker, "fall", "nightly").await;
        assert_eq!(nightly.next_ms, Some(at("2026-10-26T01:30:00Z")));
    }
);

on_both!(catch_up_policies_after_a_downtime, ["catchup"], |env| {
    let t = "catchup";
    let five = |catch_up| spec("0 */5 * * * *", "UTC", Overlap::Allow, catch_up);
    for (name, catch_up) in [
        ("none", CatchUp::None),
        ("one", CatchUp::One),
        (
            "all",
            CatchUp::All {
                within: Duration::from_secs(13 * 60),
            },
        ),
    ] {
        set_at(&env, t, name, &five(catch_up), "2026-01-01T00:00:00Z").await;
        // Down from 00:05 to 00:32: six occurrences missed.
        let fired = fire_at(&env.broker, t, name, "2026-01-01T00:32:00Z").await;
        assert_eq!(fired.fired + fired.skipped, 6, "{name}: {fired:?}");
        let next = schedule(&env.broker, t, name).await.next_ms;
        assert_eq!(next, Some(at("2026-01-01T00:35:00Z")), "{name}");
    }
    let mut want = ids("one", &["2026-01-01T00:30:00Z"]);
    want.extend(ids(
        "all",
        &[
            "2026-01-01T00:20:00Z",
            "2026-01-01T00:25:00Z",
            "2026-01-01T00:30:00Z",
        ],
    ));
    assert_eq!(pending_ids(&env, t).await, want);

    // On time (within the grace), `none` fires.
    let fired = fire_at(&env.broker, t, "none", "2026-01-01T00:35:20Z").await;
    assert_eq!(fired.fired, 1, "{fired:?}");
    assert_eq!(
        pending_ids(&env, t).await.last().map(String::as_str),
        Some(format!("cron:none:{}", at("2026-01-01T00:35:00Z")).as_str())
    );
});

on_both!(
    workers_ticking_at_once_enqueue_each_occurrence_once,
    ["race"],
    |env| {
        let brokers = [
            Broker::connect(&env.config).await.unwrap(),
            Broker::connect(&env.config).await.unwrap(),
            Broker::connect(&env.config).await.unwrap(),
        ];
        let every_second = spec("* * * * * *", "UTC", Overlap::Allow, ALL_DAY);
        set_at(&env, "race", "tick", &every_second, "2026-06-01T12:00:00Z").await;
        let mut total = 0;
        for round in 1..=10 {
            let when = format!("2026-06-01T12:00:{:02}.500Z", round * 3);
            let fired = futures_util::future::join_all(
                brokers
                    .iter()
                    .map(|broker| fire_at(broker, "race", "tick", &when)),
            )
            .await;
            total += fired.iter().map(|f| f.fired).sum::<u32>();
        }
        let want: Vec<String> = (1..=30)
            .map(|s| format!("cron:tick:{}", at("2026-06-01T12:00:00Z") + s * 1000))
            .collect();
        assert_eq!(total, 30);
        assert_eq!(pending_ids(&env, "race").await, want);
    }
);

on_both!(
    skip_overlap_waits_for_the_previous_run,
    ["overlap"],
    |env| {
        let t = "overlap";
        let five = spec("0 */5 * * * *", "UTC", Overlap::Skip, ALL_DAY);
        set_at(&env, t, "s", &five, "2026-01-01T00:00:00Z").await;
        assert_eq!(
            fire_at(&env.broker, t, "s", "2026-01-01T00:05:01Z")
                .await
                .fired,
            1
        );
        // The 00:05 run is still queued: 00:10 passes without a run.
        let fired = fire_at(&env.broker, t, "s", "2026-01-01T00:10:01Z").await;
        assert_eq!((fired.fired, fired.skipped), (0, 1));
        // It runs and completes; 00:15 fires again.
        let fetched = env
            .broker
            .fetch(t, 10, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(fetched.jobs.len(), 1);
        env.broker
            .ack(t, &fetched.jobs, &[Duration::from_millis(1)])
            .await
            .unwrap();
        assert_eq!(
            fire_at(&env.broker, t, "s", "2026-01-01T00:15:01Z")
                .await
                .fired,
            1
        );
        // After a downtime, skip fires only the latest missed occurrence.
        let fetched = env
            .broker
            .fetch(t, 10, Duration::from_secs(30))
            .await
            .unwrap();
        env.broker
            .ack(t, &fetched.jobs, &[Duration::from_millis(1)])
            .await
            .unwrap();
        let fired = fire_at(&env.broker, t, "s", "2026-01-01T00:31:00Z").await;
        assert_eq!((fired.fired, fired.skipped), (1, 2));
        assert_eq!(
            pending_ids(&env, t).await,
            ids("s", &["2026-01-01T00:30:00Z"])
        );
    }
);

on_both!(pause_resume_trigger_and_remove, ["admin"], |env| {
    let t = "admin";
    let five = spec("0 */5 * * * *", "UTC", Overlap::Allow, CatchUp::One);
    set_at(&env, t, "s", &five, "2026-01-01T00:00:00Z").await;
    assert!(env.broker.pause_schedule(t, "s").await.unwrap());
    assert!(!env.broker.pause_schedule(t, "s").await.unwrap());
    assert!(schedule(&env.broker, t, "s").await.paused);
    let fired = fire_at(&env.broker, t, "s", "2026-01-01T00:05:01Z").await;
    assert_eq!((fired.fired, fired.skipped), (0, 1));
    assert!(env.broker.resume_schedule(t, "s").await.unwrap());
    assert_eq!(
        fire_at(&env.broker, t, "s", "2026-01-01T00:10:01Z")
            .await
            .fired,
        1
    );

    let id = env
        .broker
        .trigger_schedule(t, "s", &RUN, CronClock::SERVER)
        .await
        .unwrap();
    assert!(id.as_str().starts_with("cron:s:now:"), "{id}");
    let listed = schedule(&env.broker, t, "s").await;
    assert_eq!(listed.last_id.as_deref(), Some(id.as_str()));
    assert_eq!(pending_ids(&env, t).await.len(), 2);

    // Setting the same definition again keeps the next fire time; a new one
    // starts over from now.
    let next = listed.next_ms.unwrap();
    assert_eq!(
        set_at(&env, t, "s", &five, "2026-01-01T00:12:00Z").await,
        next
    );
    let hourly = spec("0 0 * * * *", "UTC", Overlap::Allow, CatchUp::One);
    assert_eq!(
        set_at(&env, t, "s", &hourly, "2026-01-01T00:12:00Z").await,
        at("2026-01-01T01:00:00Z")
    );

    assert!(matches!(
        env.broker
            .trigger_schedule(t, "missing", &RUN, CronClock::SERVER)
            .await,
        Err(Error::Schedule { .. })
    ));
    assert!(matches!(
        env.broker.pause_schedule(t, "missing").await,
        Err(Error::Schedule { .. })
    ));
    assert!(env.broker.remove_schedule(t, "s").await.unwrap());
    assert!(env.broker.schedules(t).await.unwrap().is_empty());
    assert!(!env.broker.remove_schedule(t, "s").await.unwrap());
    // The runs already enqueued stay.
    assert_eq!(pending_ids(&env, t).await.len(), 2);
});

#[tokio::test]
async fn bad_definitions_are_refused() {
    let env = Env::on(Deployment::Standalone).await;
    for (name, spec) in [
        ("s", ScheduleSpec::new("61 * * * *", "UTC")),
        ("s", ScheduleSpec::new("* * * * *", "Mars/Olympus")),
        ("a:paused", ScheduleSpec::new("* * * * *", "UTC")),
    ] {
        let result = env
            .broker
            .set_schedule("bad", name, &spec, b"", CronClock::SERVER)
            .await;
        assert!(matches!(result, Err(Error::Schedule { .. })), "{result:?}");
    }
}
