//! Why an NX-OS port went down: an operator's `shutdown` and a failed link
//! both drop the carrier of the port's `Eth1-7` netdev, and only the switch's
//! own model (the DME, read through NX-API's REST API) tells them apart.
//!
//! Two managed objects answer, one the child of the other (Cisco Nexus Model
//! Reference, NX-OS 10.2(2), `l1:PhysIf` and `ethpm:PhysIf`,
//! <https://pubhub.devnetcloud.com/media/dme-docs-10-2-2/docs/>):
//! - `l1PhysIf` at `sys/intf/phys-[eth1/7]`: the port's configuration;
//!   `adminSt` is `up` or `down` (`shutdown`).
//! - `ethpmPhysIf` at `sys/intf/phys-[eth1/7]/phys`: its running state;
//!   `operSt` (`up`, `down`, …) and `operStQual`, the reason in one word
//!   (`none`, `admin-down`, `link-failure`, `sfp-missing`, `err-disabled`,
//!   …, as published DME replies show).
//!
//! One request answers both: an object query for the `l1PhysIf` with its
//! `ethpmPhysIf` child, `GET /api/mo/sys/intf/phys-[eth1/7].json?
//! query-target=self&rsp-subtree=children&rsp-subtree-class=ethpmPhysIf`
//! (NX-API REST SDK User Guide, "query-target", "rsp-subtree"). The reply is
//! the DME's usual `{"totalCount": "1", "imdata": [{"l1PhysIf": {"attributes":
//! {…}, "children": [{"ethpmPhysIf": {"attributes": {…}}}]}}]}`; the parser
//! also takes the child as a sibling in `imdata`, the shape a `subtree`
//! query gives, so either form a release answers with is read.
//!
//! The switch's word wins over the carrier's: `adminSt: down` makes the
//! event an administrative one (`admin: down`, reason `administratively
//! down`) whatever `operStQual` says; `adminSt: up` makes it a failure, with
//! `operStQual` as the reason unless it says `none`.

use crate::nxapi::{Client, NxapiError};
use hopwatch_wire::event::AdminState;
use hopwatch_wire::ifname::nxos_name;
use serde_json::Value;

/// The reason a link event gives for a shutdown.
pub const ADMIN_DOWN_REASON: &str = "administratively down";

/// What the DME says of one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortCause {
    pub admin: AdminState,
    /// `ethpmPhysIf.operSt`, when the reply carried it.
    pub oper: Option<String>,
    /// `ethpmPhysIf.operStQual`, when the reply carried it.
    pub qualifier: Option<String>,
}

impl PortCause {
    /// The reason a `link` event carries: the shutdown's, or the switch's
    /// qualifier for an enabled port that is down.
    pub fn reason(&self) -> Option<String> {
        match self.admin {
            AdminState::Down => Some(ADMIN_DOWN_REASON.to_string()),
            AdminState::Up => self
                .qualifier
                .as_deref()
                .filter(|q| !q.is_empty() && *q != "none")
                .map(str::to_string),
        }
    }
}

/// The DME's name of a port (`eth1/7`) for its Linux netdev (`Eth1-7`);
/// `None` for anything that is no front-panel Ethernet port (port-channels,
/// SVIs, `mgmt0`, Linux's own devices), which have no `l1PhysIf`.
pub fn dme_port(netdev: &str) -> Option<String> {
    let nxos = nxos_name(netdev);
    let rest = nxos.strip_prefix("Ethernet")?;
    Some(format!("eth{rest}"))
}

/// The REST path that answers for `port` (`eth1/7`).
pub fn dme_path(port: &str) -> String {
    format!(
        "/api/mo/sys/intf/phys-[{port}].json?query-target=self&rsp-subtree=children&rsp-subtree-class=ethpmPhysIf"
    )
}

/// Reads a reply to [`dme_path`]; the error says what is missing.
pub fn parse_port_cause(reply: &Value) -> Result<PortCause, String> {
    let items = reply["imdata"]
        .as_array()
        .ok_or("no `imdata` array in the reply")?;
    let l1 = find(items, "l1PhysIf").ok_or("no l1PhysIf in the reply; is the port there?")?;
    let admin = match l1["adminSt"].as_str() {
        Some("up") => AdminState::Up,
        Some("down") => AdminState::Down,
        Some(other) => return Err(format!("l1PhysIf.adminSt is `{other}`, not up or down")),
        None => return Err("l1PhysIf has no adminSt".into()),
    };
    let ethpm = find(items, "ethpmPhysIf");
    let text = |key: &str| ethpm.and_then(|a| a[key].as_str()).map(str::to_string);
    Ok(PortCause {
        admin,
        oper: text("operSt"),
        qualifier: text("operStQual"),
    })
}

/// The `attributes` of the first object of `class` among `items` and their
/// children, depth first.
fn find<'a>(items: &'a [Value], class: &str) -> Option<&'a Value> {
    items.iter().find_map(|item| {
        let object = item.get(class);
        if let Some(attributes) = object.and_then(|o| o.get("attributes")) {
            return Some(attributes);
        }
        item.as_object()?.values().find_map(|o| {
            o.get("children")
                .and_then(Value::as_array)
                .and_then(|children| find(children, class))
        })
    })
}

/// Asks the switch about `port` (`eth1/7`).
pub fn ask(client: &mut Client, port: &str) -> Result<PortCause, NxapiError> {
    let path = dme_path(port);
    let reply: Value = client.get(&path)?;
    parse_port_cause(&reply).map_err(|reason| NxapiError::Reply {
        command: format!("GET {path}"),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(admin: &str, oper: &str, qual: &str) -> Value {
        json!({"totalCount": "1", "imdata": [{"l1PhysIf": {
            "attributes": {"adminSt": admin, "dn": "sys/intf/phys-[eth1/7]", "id": "eth1/7"},
            "children": [{"ethpmPhysIf": {"attributes": {
                "dn": "sys/intf/phys-[eth1/7]/phys", "operSt": oper, "operStQual": qual}}}]}}]})
    }

    #[test]
    fn ports_map_to_their_dme_names() {
        assert_eq!(dme_port("Eth1-7").as_deref(), Some("eth1/7"));
        assert_eq!(dme_port("Eth1-49-2").as_deref(), Some("eth1/49/2"));
        assert_eq!(dme_port("Ethernet1/1").as_deref(), Some("eth1/1"));
        for other in ["po10", "Vlan10", "mgmt0", "eth0", "lo"] {
            assert_eq!(dme_port(other), None, "{other}");
        }
        assert_eq!(
            dme_path("eth1/7"),
            "/api/mo/sys/intf/phys-[eth1/7].json?query-target=self&rsp-subtree=children&rsp-subtree-class=ethpmPhysIf"
        );
    }

    #[test]
    fn a_shutdown_and_a_failure_read_apart() {
        let shut = parse_port_cause(&reply("down", "down", "admin-down")).unwrap();
        assert_eq!(shut.admin, AdminState::Down);
        assert_eq!(shut.reason().as_deref(), Some(ADMIN_DOWN_REASON));
        let failed = parse_port_cause(&reply("up", "down", "link-failure")).unwrap();
        assert_eq!(
            failed,
            PortCause {
                admin: AdminState::Up,
                oper: Some("down".into()),
                qualifier: Some("link-failure".into()),
            }
        );
        assert_eq!(failed.reason().as_deref(), Some("link-failure"));
        // Up again by the time the switch was asked: enabled, no reason.
        let back = parse_port_cause(&reply("up", "up", "none")).unwrap();
        assert_eq!((back.admin, back.reason()), (AdminState::Up, None));
    }

    #[test]
    fn the_child_may_come_as_a_sibling() {
        let flat = json!({"totalCount": "2", "imdata": [
            {"l1PhysIf": {"attributes": {"adminSt": "up"}}},
            {"ethpmPhysIf": {"attributes": {"operSt": "down", "operStQual": "sfp-missing"}}}]});
        let cause = parse_port_cause(&flat).unwrap();
        assert_eq!(cause.reason().as_deref(), Some("sfp-missing"));
        // Without the running state the admin state still answers.
        let bare = json!({"imdata": [{"l1PhysIf": {"attributes": {"adminSt": "down"}}}]});
        assert_eq!(parse_port_cause(&bare).unwrap().admin, AdminState::Down);
    }

    #[test]
    fn replies_without_an_answer_say_what_is_missing() {
        for (reply, want) in [
            (json!({"totalCount": "0", "imdata": []}), "no l1PhysIf"),
            (json!({"error": "x"}), "no `imdata`"),
            (
                json!({"imdata": [{"l1PhysIf": {"attributes": {"adminSt": "testing"}}}]}),
                "`testing`",
            ),
            (
                json!({"imdata": [{"l1PhysIf": {"attributes": {}}}]}),
                "no adminSt",
            ),
        ] {
            let error = parse_port_cause(&reply).unwrap_err();
            assert!(error.contains(want), "{reply}: {error}");
        }
    }
}
