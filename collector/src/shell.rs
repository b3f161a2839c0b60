//! Tables for the shell commands (`agents`, `alerts`, `changes`,
//! `downtime`): the same answers the API gives, laid out for a terminal.

use crate::store::query::{AgentInfo, AlertRecord, Changes, Downtime};
use crate::store::silences::{SilenceRecord, SilenceState};
use hopwatch_wire::text::escape;

/// Left-aligned columns two spaces apart, headers first. Every cell is
/// escaped for the terminal: names and messages come from agents.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape(cell).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `2d 1h 2m 3s`, to the second; days are the largest unit, so a month's
/// total reads in the same units as one outage.
pub fn duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let parts = [
        (total / 86_400, "d"),
        (total % 86_400 / 3600, "h"),
        (total % 3600 / 60, "m"),
        (total % 60, "s"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".into()
    } else {
        text.join(" ")
    }
}

pub fn agents(agents: &[AgentInfo]) -> String {
    if agents.is_empty() {
        return "No agent has connected yet.\n".into();
    }
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                a.agent.clone(),
                match &a.as_of {
                    Some(at) => format!("{} as of {at}", a.state),
                    None => a.state.to_string(),
                },
                a.last_seen.clone(),
                a.address.clone(),
                a.version.clone(),
                a.firing.to_string(),
                a.interfaces.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "AGENT",
            "STATE",
            "LAST SEEN",
            "ADDRESS",
            "VERSION",
            "FIRING",
            "INTERFACES",
        ],
        &rows,
    )
}

pub fn alerts(alerts: &[AlertRecord]) -> String {
    if alerts.is_empty() {
        return "No alerts.\n".into();
    }
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            vec![
                a.agent.clone(),
                a.interface.clone(),
                a.rule.clone(),
                a.severity.clone(),
                if a.silenced {
                    format!("{} (silenced)", a.state)
                } else {
                    a.state.to_string()
                },
                a.fired_at.clone().unwrap_or_else(|| "-".into()),
                a.resolved_at.clone().unwrap_or_else(|| "-".into()),
                a.message.clone(),
            ]
        })
        .collect();
    table(
        &[
            "AGENT",
            "INTERFACE",
            "RULE",
            "SEVERITY",
            "STATE",
            "FIRED",
            "RESOLVED",
            "MESSAGE",
        ],
        &rows,
    )
}

pub fn silences(silences: &[SilenceRecord]) -> String {
    if silences.is_empty() {
        return "No silences.\n".into();
    }
    let rows: Vec<Vec<String>> = silences
        .iter()
        .map(|r| {
            let s = &r.silence;
            vec![
                s.id.clone(),
                match r.state {
                    SilenceState::Pending => "pending",
                    SilenceState::Active => "active",
                    SilenceState::Ended => "ended",
                }
                .into(),
                s.agent.clone().unwrap_or_else(|| "*".into()),
                s.interface.clone(),
                s.rule.clone().unwrap_or_else(|| "*".into()),
                s.starts_at.clone(),
                s.ends_at.clone(),
                s.author.clone(),
                s.reason.clone(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATE",
            "AGENT",
            "INTERFACE",
            "RULE",
            "STARTS",
            "ENDS",
            "AUTHOR",
            "REASON",
        ],
        &rows,
    )
}

pub fn changes(changes: &Changes) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for d in &changes.went_down {
        rows.push((
            d.at.clone(),
            vec![
                d.at.clone(),
                d.agent.clone(),
                d.interface.clone(),
                d.state.into(),
                String::new(),
            ],
        ));
    }
    for u in &changes.came_up {
        let down = u.down_seconds.map(duration).unwrap_or_else(|| "?".into());
        rows.push((
            u.at.clone(),
            vec![
                u.at.clone(),
                u.agent.clone(),
                u.interface.clone(),
                "up".into(),
                down,
            ],
        ));
    }
    if rows.is_empty() {
        return format!("No link changes since {}.\n", changes.since);
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, r)| r).collect();
    table(&["AT", "AGENT", "INTERFACE", "WENT", "WAS DOWN FOR"], &rows)
}

/// The interfaces with any downtime, unknown time or a current outage, or
/// every interface with `all`; then the fleet total.
pub fn downtime(downtime: &Downtime, all: bool) -> String {
    let rows: Vec<Vec<String>> = downtime
        .interfaces
        .iter()
        .filter(|i| all || i.down_seconds > 0.0 || i.unknown_seconds > 0.0 || i.currently_down)
        .map(|i| {
            vec![
                i.agent.clone(),
                i.interface.clone(),
                duration(i.down_seconds),
                i.down_count.to_string(),
                duration(i.unknown_seconds),
                i.state.to_string(),
            ]
        })
        .collect();
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("No interface was down.\n");
    } else {
        out.push_str(&table(
            &["AGENT", "INTERFACE", "DOWN", "OUTAGES", "UNKNOWN", "NOW"],
            &rows,
        ));
    }
    out.push_str(&format!(
        "\nTotal down time of {} interfaces from {} to {}: {}\n",
        downtime.interfaces.len(),
        downtime.since,
        downtime.until,
        duration(downtime.total_down_seconds)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query::{CameUp, InterfaceDowntime, WentDown};

    #[test]
    fn durations_count_in_days_at_most() {
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(3.4), "3s");
        assert_eq!(duration(3723.0), "1h 2m 3s");
        assert_eq!(duration(40.0 * 86_400.0 + 60.0), "40d 1m");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["A", "LONGER"],
            &[vec!["xyz".into(), "1".into()], vec!["q".into(), "".into()]],
        );
        assert_eq!(t, "A    LONGER\nxyz  1\nq\n");
    }

    #[test]
    fn cells_are_escaped_and_aligned_as_printed() {
        let t = table(
            &["A", "B"],
            &[
                vec!["\x1b[2J".into(), "1".into()],
                vec!["q".into(), "".into()],
            ],
        );
        assert_eq!(t, "A        B\n\\x1b[2J  1\nq\n");
    }

    #[test]
    fn changes_in_time_order_with_outage_lengths() {
        let c = Changes {
            since: "2024-01-01T00:00:00.000Z".into(),
            went_down: vec![WentDown {
                agent: "leaf1".into(),
                interface: "swp1".into(),
                at: "2024-01-01T00:01:00.000Z".into(),
                state: "down",
            }],
            came_up: vec![CameUp {
                agent: "leaf1".into(),
                interface: "swp1".into(),
                at: "2024-01-01T00:01:03.000Z".into(),
                down_seconds: Some(3.0),
            }],
        };
        let text = changes(&c);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("down"), "{text}");
        assert!(
            lines[2].contains("up") && lines[2].ends_with("3s"),
            "{text}"
        );
    }

    #[test]
    fn downtime_hides_quiet_interfaces_unless_asked() {
        let row = |name: &str, down: f64| InterfaceDowntime {
            agent: "leaf1".into(),
            interface: name.into(),
            down_seconds: down,
            down_count: i64::from(down > 0.0),
            currently_down: false,
            unknown_seconds: 0.0,
            admin_down_seconds: 0.0,
            availability: None,
            state: "up",
        };
        let d = Downtime {
            since: "s".into(),
            until: "u".into(),
            interfaces: vec![row("swp1", 3723.0), row("swp2", 0.0)],
            total_down_seconds: 3723.0,
        };
        let text = downtime(&d, false);
        assert!(text.contains("swp1") && text.contains("1h 2m 3s"), "{text}");
        assert!(!text.contains("swp2"), "{text}");
        assert!(
            text.contains("Total down time of 2 interfaces from s to u: 1h 2m 3s"),
            "{text}"
        );
        assert!(downtime(&d, true).contains("swp2"));
    }
}
