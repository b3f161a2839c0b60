//! Every read question, asked of a SQLite store and of a PostgreSQL
//! database holding the same rows: one answer.

use super::fixture::{self, NOW, TIMEOUT, same};
use crate::store::query::{self, AlertFilter, AlertQuery, DowntimeQuery};
use crate::store::since::SinceCache;
use crate::store::{Reads, StoreError, fleet, links, silences};

const DAY: i64 = 86_400_000;

#[test]
fn root_agents_and_metrics_answer_alike_on_both_stores() {
    let agents = same("root_agents_answer_alike", |reads| {
        reads.with(|db| query::agents(db, NOW, TIMEOUT)).unwrap()
    });
    // Byte order, as SQLite compares and PostgreSQL's COLLATE "C" does.
    let names: Vec<&str> = agents.iter().map(|a| a.agent.as_str()).collect();
    assert_eq!(names, ["Leaf2", "_spine", "broken", "leaf-ä", "leaf1"]);
    let states: Vec<&str> = agents.iter().map(|a| a.state).collect();
    assert_eq!(states, ["stale", "online", "online", "stopped", "online"]);
    assert_eq!((agents[4].firing, agents[4].interfaces), (3, 4));
    let metrics = same("root_metrics_answer_alike", |reads| {
        reads.with(query::metrics_snapshot).unwrap()
    });
    assert_eq!(metrics[4], ("leaf1".to_string(), NOW - 1_000, 3));
}

#[test]
fn root_alerts_answer_alike_on_both_stores() {
    let queries = [
        AlertQuery::firing(),
        AlertQuery::all_since(NOW - 2 * DAY),
        AlertQuery::all_since(0),
        AlertQuery {
            state: AlertFilter::Resolved,
            since_ms: Some(NOW - 50 * DAY),
            ..AlertQuery::firing()
        },
        AlertQuery {
            agent: Some("leaf1".into()),
            interface: Some("swp1".into()),
            ..AlertQuery::all_since(0)
        },
        AlertQuery {
            rule: Some("crc".into()),
            limit: 1,
            ..AlertQuery::firing()
        },
        AlertQuery {
            agent: Some("nobody".into()),
            ..AlertQuery::all_since(0)
        },
    ];
    let answers = same("root_alerts_answer_alike", |reads| {
        queries
            .iter()
            .map(|q| reads.with(|db| query::alerts(db, q)).unwrap())
            .collect::<Vec<_>>()
    });
    let firing: Vec<(&str, &str)> = answers[0]
        .iter()
        .map(|a| (a.agent.as_str(), a.rule.as_str()))
        .collect();
    assert_eq!(
        firing,
        [
            ("leaf1", "crc"),
            ("leaf1", "_down"),
            ("leaf1", "tx-errors"),
            ("leaf-ä", "crc")
        ]
    );
    assert_eq!(answers[2].len(), 7);
    // NULLs and reals come back as stored.
    let util = answers[2].iter().find(|a| a.rule == "util").unwrap();
    assert_eq!(util.value, Some(0.30000000000000004));
    assert_eq!(util.threshold, 1e-300);
    // Stored as -0.0: SQLite answers 0.0, and so must PostgreSQL.
    assert!(util.resolved_value.unwrap().is_sign_positive());
    let lost = answers[2].iter().find(|a| a.fired_at.is_none()).unwrap();
    assert_eq!((lost.rule.as_str(), lost.value), ("Tx-errors", Some(1e300)));
    let crc = &answers[5];
    assert_eq!(crc.len(), 1);
    assert_eq!(crc[0].labels["zone"], "ä");
    assert_eq!(crc[0].silence.as_deref(), Some("c-0000000000000001"));
    assert!(answers[6].is_empty());
}

#[test]
fn root_changes_answer_alike_on_both_stores() {
    let (all, leaf2) = same("root_changes_answer_alike", |reads| {
        reads
            .with(|db| {
                Ok((
                    query::changes(db, NOW - 30 * DAY, None)?,
                    query::changes(db, 0, Some("Leaf2"))?,
                ))
            })
            .unwrap()
    });
    // eth1's one change was 50 days ago.
    assert_eq!(all.went_down.len() + all.came_up.len(), 11);
    assert_eq!(leaf2.went_down.len(), 1);
    let flap = all
        .came_up
        .iter()
        .find(|c| c.interface == "Ethernet1/7")
        .unwrap();
    assert_eq!(flap.down_seconds, Some(0.0));
}

#[test]
fn root_downtime_answers_alike_on_both_stores() {
    let q = |since_ms: i64, agent: Option<&str>, interface: Option<&str>| DowntimeQuery {
        since_ms,
        agent: agent.map(str::to_string),
        interface: interface.map(str::to_string),
    };
    let queries = [
        q(NOW - 30 * DAY, None, None),
        q(NOW - DAY, None, None),
        q(NOW - 200 * DAY, None, None),
        q(NOW - 30 * DAY, Some("leaf1"), None),
        q(NOW - 30 * DAY, None, Some("swp1")),
        q(NOW - 30 * DAY, Some("leaf1"), Some("Ethernet1/7")),
        q(NOW - 30 * DAY, Some("leaf9"), None),
        q(NOW + DAY, None, None),
    ];
    let answers = same("root_downtime_answers_alike", |reads| {
        queries
            .iter()
            .map(|q| {
                reads
                    .with(|db| query::downtime(db, q, NOW, TIMEOUT, &SinceCache::none()))
                    .unwrap()
            })
            .collect::<Vec<_>>()
    });
    let month = &answers[0];
    assert_eq!(month.interfaces.len(), 6);
    assert_eq!(month.interfaces[0].interface, "eth1");
    let swp1 = month
        .interfaces
        .iter()
        .find(|i| (i.agent.as_str(), i.interface.as_str()) == ("leaf1", "swp1"))
        .unwrap();
    assert_eq!(swp1.down_seconds, 3600.0 + 61.234);
    assert_eq!(swp1.admin_down_seconds, 600.0);
    assert_eq!(answers[3].interfaces.len(), 4);
    assert_eq!(answers[4].interfaces.len(), 1);
    assert_eq!(answers[5].interfaces.len(), 1);
    assert!(answers[6].interfaces.is_empty());
}

#[test]
fn root_fleet_timeline_and_worst_answer_alike_on_both_stores() {
    let (fleet, timelines, worst) = same("root_web_page_answers_alike", |reads| {
        reads
            .with(|db| {
                let fleet = fleet::fleet(db, NOW, TIMEOUT)?;
                let mut timelines = Vec::new();
                for (agent, interface, since, width) in [
                    ("leaf1", "swp1", NOW - 30 * DAY, 100),
                    ("leaf1", "swp1", NOW - 3 * 3_600_000, 3),
                    ("leaf1", "Ethernet1/7", NOW - DAY, 1000),
                    ("Leaf2", "swp2", NOW - 7 * DAY, 50),
                    ("leaf1", "swp1", NOW - 100 * DAY, 10),
                    ("leaf9", "swp1", 0, 10),
                    ("leaf1", "swp9", 0, 10),
                ] {
                    let q = links::TimelineQuery {
                        agent: agent.into(),
                        interface: interface.into(),
                        since_ms: since,
                        until_ms: NOW,
                        width,
                    };
                    timelines.push(links::timeline(db, &q, NOW, TIMEOUT)?);
                }
                // Asked with nothing remembered, then twice through one
                // cache: the second time from memory.
                let ask = |remembered: &SinceCache| -> Result<[links::Worst; 2], StoreError> {
                    Ok([
                        links::worst(db, NOW - 30 * DAY, 100, NOW, TIMEOUT, remembered)?,
                        links::worst(db, NOW - DAY, 2, NOW, TIMEOUT, remembered)?,
                    ])
                };
                let worst = ask(&SinceCache::none())?;
                // Each row's figures are its own timeline's over the same
                // window (read per interface rather than for all the rows
                // at once).
                for (w, since) in worst.iter().zip([NOW - 30 * DAY, NOW - DAY]) {
                    for row in &w.interfaces {
                        let q = links::TimelineQuery {
                            agent: row.agent.clone(),
                            interface: row.interface.clone(),
                            since_ms: since,
                            until_ms: NOW,
                            width: 10,
                        };
                        let t = links::timeline(db, &q, NOW, TIMEOUT)?.expect("a known interface");
                        assert_eq!(
                            (row.availability, row.outages, row.down_seconds),
                            (t.availability, t.outages, t.down_seconds),
                            "{row:?}"
                        );
                        assert_eq!(
                            (row.mttr_seconds, row.longest_outage_seconds),
                            (t.mttr_seconds, t.longest_outage_seconds),
                            "{row:?}"
                        );
                    }
                }
                let remembered = SinceCache::new(std::time::Duration::from_secs(400 * 86_400));
                assert_eq!(ask(&remembered)?, worst);
                assert_eq!(ask(&remembered)?, worst, "from memory");
                Ok((fleet, timelines, worst))
            })
            .unwrap()
    });
    assert_eq!((fleet.firing, fleet.links_down), (4, 2));
    let swp1 = timelines[0].as_ref().unwrap();
    assert_eq!(swp1.outages, 2);
    assert!(timelines[5].is_err() && timelines[6].is_err());
    assert_eq!(worst[0].interfaces.len(), 6);
    assert_eq!(worst[1].interfaces.len(), 2);
}

#[test]
fn root_silences_answer_alike_and_change_alike_on_both_stores() {
    let (before, after) = same("root_silences_answer_alike", |reads| {
        reads
            .with(|db| {
                Ok((
                    silences::list(db, NOW, None)?,
                    silences::list(db, NOW, Some(NOW - 7 * DAY))?,
                ))
            })
            .unwrap()
    });
    let ids: Vec<&str> = after.iter().map(|s| s.silence.id.as_str()).collect();
    // Running or to come first, soonest to end first; then the ended,
    // latest first.
    assert_eq!(
        ids,
        [
            "c-0000000000000002",
            "c-0000000000000001",
            "c-000000000000000A",
            "c-0000000000000003"
        ]
    );
    assert_eq!(before.len(), 2);
    let one = same("root_silence_by_id_answers_alike", |reads| {
        reads
            .with(|db| {
                Ok((
                    silences::get(db, "c-000000000000000A", NOW)?,
                    silences::get(db, "c-ffffffffffffffff", NOW)?,
                    silences::not_ended(db, NOW)?,
                ))
            })
            .unwrap()
    });
    assert_eq!(one.0.unwrap().removed_by.as_deref(), Some("bob"));
    assert!(one.1.is_none());
    assert_eq!(one.2.len(), 2);
}

/// The writer's side: `apply` and `unsilence` change both stores alike.
#[test]
fn root_silence_changes_apply_alike_on_both_stores() {
    let remove = |id: &str, at: i64| silences::Change::Remove {
        id: id.into(),
        by: "carol".into(),
        now_ms: at,
    };
    let fill = |db: &dyn crate::store::sql::Sql| {
        fixture::fleet(db)?;
        // A pending silence removed: its window closes at the removal.
        assert!(silences::apply(db, &remove("c-0000000000000002", NOW))?);
        assert!(!silences::apply(
            db,
            &remove("c-0000000000000002", NOW + 1)
        )?);
        // A running one removed: it keeps its start.
        assert!(silences::apply(db, &remove("c-0000000000000001", NOW + 2))?);
        let add = silences::Change::Add {
            silence: silences::Stored {
                silence: hopwatch_wire::silence::Silence {
                    id: "c-0000000000000004".into(),
                    interface: "swp*".into(),
                    rule: None,
                    agent: Some("leaf1".into()),
                    starts_at: crate::store::rfc3339(NOW),
                    ends_at: crate::store::rfc3339(NOW + DAY),
                    reason: "move".into(),
                    author: "dave".into(),
                },
                starts_ms: NOW,
                ends_ms: NOW + DAY,
            },
            now_ms: NOW,
            forget_before_ms: NOW - 2 * 3_600_000,
        };
        assert!(silences::apply(db, &add)?);
        assert!(silences::unsilence(db, 2)?);
        assert!(!silences::unsilence(db, 2)?);
        Ok(())
    };
    let (sqlite, postgres) = fixture::on_both("root_silence_changes_apply_alike", fill, |reads| {
        reads
            .with(|db| {
                Ok((
                    silences::list(db, NOW + 3, Some(0))?,
                    query::alerts(db, &AlertQuery::firing())?,
                ))
            })
            .unwrap()
    });
    if let Some(postgres) = &postgres {
        assert_eq!(format!("{sqlite:?}"), format!("{postgres:?}"));
    }
    let (list, alerts) = sqlite;
    let shown: Vec<(&str, &str, &str)> = list
        .iter()
        .map(|s| {
            (
                s.silence.id.as_str(),
                s.silence.starts_at.as_str(),
                s.silence.ends_at.as_str(),
            )
        })
        .collect();
    let at = crate::store::rfc3339;
    // The silence ended two days before is forgotten by the add.
    assert_eq!(
        shown,
        [
            ("c-0000000000000004", &*at(NOW), &*at(NOW + DAY)),
            ("c-0000000000000001", &*at(NOW - 3_600_000), &*at(NOW + 2)),
            ("c-0000000000000002", &*at(NOW), &*at(NOW)),
            ("c-000000000000000A", &*at(NOW - DAY), &*at(NOW - 3_600_000)),
        ]
    );
    assert!(alerts.iter().all(|a| !a.silenced));
}

#[test]
fn root_collector_running_reads_the_lock_or_the_collectors_table() {
    let (sqlite, postgres) = fixture::on_both(
        "root_collector_running",
        |db| {
            // Only PostgreSQL's store has the table; SQLite's answers from
            // the lock on its data_dir, which nothing holds here.
            if db
                .execute("SELECT 1 FROM collectors WHERE id = ''", &[])
                .is_ok()
            {
                db.execute(
                    "INSERT INTO collectors (id, host, agents_listen, http_listen, version,
                                             started_ms, last_seen_ms)
                     VALUES ('c1', 'h', 'a', 'b', 'v', 0, $1)",
                    &[&(NOW - 10_000)],
                )?;
            }
            Ok(())
        },
        |reads| {
            [
                reads.collector_running(NOW, TIMEOUT).unwrap(),
                reads.collector_running(NOW + 60_000, TIMEOUT).unwrap(),
            ]
        },
    );
    assert_eq!(sqlite, [false, false]);
    if let Some(postgres) = postgres {
        assert_eq!(postgres, [true, false], "seen 10 s ago, then 70 s ago");
    }
}

#[test]
fn root_one_call_of_with_reads_one_snapshot_on_both_stores() {
    let (sqlite, postgres) = fixture::on_both("root_one_snapshot", fixture::fleet, |reads| {
        // A writer commits between two queries of one call.
        let write = |sql: &str| match &**reads {
            Reads::Sqlite(pool) => {
                crate::store::open_writer(pool.data_dir())
                    .unwrap()
                    .execute(sql, [])
                    .unwrap();
            }
            Reads::Postgres(pg) => {
                let client = pg.runtime().block_on(pg.client()).unwrap();
                pg.runtime().block_on(client.execute(sql, &[])).unwrap();
            }
        };
        let count = |db: &dyn crate::store::sql::Sql| Ok(query::agents(db, NOW, TIMEOUT)?.len());
        let within = reads
            .with(|db| {
                let before = count(db)?;
                write("INSERT INTO agents (id, name) VALUES (100, 'late')");
                Ok((before, count(db)?))
            })
            .unwrap();
        (within, reads.with(count).unwrap())
    });
    for answer in std::iter::once(sqlite).chain(postgres) {
        assert_eq!(
            answer,
            ((5, 5), 6),
            "one snapshot per call, the next sees the write"
        );
    }
}
