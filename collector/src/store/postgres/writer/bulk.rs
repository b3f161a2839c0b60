//! The PostgreSQL writer's [`Sink`]: what a batch derives is gathered in
//! columns and written with one statement per table at the end of the
//! batch (`unnest` of arrays), since a round trip per row to a database
//! over the network would bound ingest by its latency. Only the writes
//! whose answer the logic needs at once (a new agent's or boot's id) are
//! sent on the spot; alert and interface ids are taken from their
//! sequences ahead, a block at a time. A round trip per new interface made 400 agents of 48
//! interfaces each, connecting at once, wait 16 s for their first ack.

use crate::store::StoreError;
use crate::store::postgres::schema::ID_BLOCK;
use crate::store::silences;
use crate::store::writer::Incoming;
use crate::store::writer::cache::Sink;
use crate::timeline::{Segment, State};
use hopwatch_wire::event::Alert;
use rustc_hash::FxHashMap;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

/// Ids taken from the `alerts` and `interfaces` sequences and not used
/// yet; kept across batches (a sequence never hands a value out twice, and
/// a batch rolled back only leaves a gap).
#[derive(Default)]
pub(super) struct IdsAhead {
    alerts: Vec<i64>,
    interfaces: Vec<i64>,
}

#[derive(Default)]
struct NewInterfaces {
    id: Vec<i64>,
    agent_id: Vec<i64>,
    name: Vec<String>,
    start_ms: Vec<i64>,
    state: Vec<i64>,
    outages: Vec<i64>,
    down_since_ms: Vec<Option<i64>>,
}

#[derive(Default)]
struct Segments {
    iface: Vec<i64>,
    start_ms: Vec<i64>,
    n: Vec<i64>,
    state: Vec<i64>,
    prior: Vec<i64>,
    down_before_ms: Vec<i64>,
    unknown_before_ms: Vec<i64>,
    outages: Vec<i64>,
    admin_down_before_ms: Vec<i64>,
}

#[derive(Default)]
struct Changes {
    at_ms: Vec<i64>,
    event_id: Vec<i64>,
    iface: Vec<i64>,
    state: Vec<i64>,
    down_ms: Vec<Option<i64>>,
}

/// Alerts opened (`fired_at_ms`) or stored resolved without a firing
/// (`resolved_at_ms`), in one shape.
#[derive(Default)]
struct NewAlerts {
    id: Vec<i64>,
    agent_id: Vec<i64>,
    boot_id: Vec<i64>,
    interface: Vec<String>,
    rule: Vec<String>,
    severity: Vec<String>,
    expr: Vec<String>,
    value: Vec<Option<f64>>,
    threshold: Vec<f64>,
    message: Vec<String>,
    fired_at_ms: Vec<Option<i64>>,
    resolved_at_ms: Vec<Option<i64>>,
    resolved_value: Vec<Option<f64>>,
    resolved_message: Vec<Option<String>>,
    resolved_by: Vec<Option<String>>,
    labels: Vec<Option<String>>,
    silence: Vec<Option<String>>,
}

#[derive(Default)]
struct Closes {
    id: Vec<i64>,
    at_ms: Vec<i64>,
    value: Vec<Option<f64>>,
    message: Vec<Option<String>>,
    by: Vec<String>,
}

/// One batch's writes, on the writer's connection, inside its transaction.
pub(super) struct Bulk<'a> {
    pub(super) client: &'a Client,
    pub(super) runtime: &'a tokio::runtime::Handle,
    /// The batch's events the store did not hold: (boot id, seq) → id.
    pub(super) fresh: FxHashMap<(i64, i64), i64>,
    ids: &'a mut IdsAhead,
    interfaces: NewInterfaces,
    segments: Segments,
    changes: Changes,
    alerts: NewAlerts,
    /// Where each alert of `alerts` is among them, by id.
    pending: FxHashMap<i64, usize>,
    closes: Closes,
    addresses: FxHashMap<i64, String>,
}

impl<'a> Bulk<'a> {
    pub(super) fn new(
        client: &'a Client,
        runtime: &'a tokio::runtime::Handle,
        ids: &'a mut IdsAhead,
    ) -> Bulk<'a> {
        Bulk {
            client,
            runtime,
            fresh: FxHashMap::default(),
            ids,
            interfaces: NewInterfaces::default(),
            segments: Segments::default(),
            changes: Changes::default(),
            alerts: NewAlerts::default(),
            pending: FxHashMap::default(),
            closes: Closes::default(),
            addresses: FxHashMap::default(),
        }
    }

    fn one_i64(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<i64, StoreError> {
        let row = self.runtime.block_on(self.client.query_one(sql, params))?;
        Ok(row.try_get(0)?)
    }

    /// The next id of `table`'s sequence, from `ahead` or, when that is
    /// empty, from the block one `nextval` takes (the sequence moves by
    /// [`ID_BLOCK`]).
    fn next_id(
        runtime: &tokio::runtime::Handle,
        client: &Client,
        table: &str,
        ahead: &mut Vec<i64>,
    ) -> Result<i64, StoreError> {
        if ahead.is_empty() {
            let start: i64 = runtime
                .block_on(client.query_one(
                    "SELECT nextval(pg_get_serial_sequence($1, 'id'))",
                    &[&table],
                ))?
                .try_get(0)?;
            ahead.extend((start..start + ID_BLOCK).rev());
        }
        Ok(ahead.pop().expect("ids just taken"))
    }

    fn push_alert(&mut self, id: i64, agent_id: i64, boot_id: i64, alert: &Alert) {
        self.pending.insert(id, self.alerts.id.len());
        let a = &mut self.alerts;
        a.id.push(id);
        a.agent_id.push(agent_id);
        a.boot_id.push(boot_id);
        a.interface.push(alert.interface.clone());
        a.rule.push(alert.rule.clone());
        a.severity.push(alert.severity.as_str().to_string());
        a.expr.push(alert.expr.clone());
        a.threshold.push(alert.threshold);
        a.labels.push(silences::labels_column(&alert.labels));
        a.silence
            .push(silences::silence_column(alert).map(str::to_string));
    }

    /// Writes what was gathered, one statement per table, sent together
    /// (pipelined) and run in this order: interfaces before their segments,
    /// alerts opened before they are closed.
    pub(super) fn flush(&mut self) -> Result<(), StoreError> {
        let i = std::mem::take(&mut self.interfaces);
        let s = std::mem::take(&mut self.segments);
        let c = std::mem::take(&mut self.changes);
        let a = std::mem::take(&mut self.alerts);
        self.pending.clear();
        let x = std::mem::take(&mut self.closes);
        let (addr_id, addr): (Vec<i64>, Vec<String>) =
            std::mem::take(&mut self.addresses).into_iter().unzip();
        let client = self.client;
        let interface_params: [&(dyn ToSql + Sync); 7] = [
            &i.id,
            &i.agent_id,
            &i.name,
            &i.start_ms,
            &i.state,
            &i.outages,
            &i.down_since_ms,
        ];
        let segment_params: [&(dyn ToSql + Sync); 9] = [
            &s.iface,
            &s.start_ms,
            &s.n,
            &s.state,
            &s.prior,
            &s.down_before_ms,
            &s.unknown_before_ms,
            &s.outages,
            &s.admin_down_before_ms,
        ];
        let change_params: [&(dyn ToSql + Sync); 5] =
            [&c.at_ms, &c.event_id, &c.iface, &c.state, &c.down_ms];
        let alert_params: [&(dyn ToSql + Sync); 17] = [
            &a.id,
            &a.agent_id,
            &a.boot_id,
            &a.interface,
            &a.rule,
            &a.severity,
            &a.expr,
            &a.value,
            &a.threshold,
            &a.message,
            &a.fired_at_ms,
            &a.resolved_at_ms,
            &a.resolved_value,
            &a.resolved_message,
            &a.resolved_by,
            &a.labels,
            &a.silence,
        ];
        let close_params: [&(dyn ToSql + Sync); 5] = [&x.id, &x.at_ms, &x.value, &x.message, &x.by];
        let address_params: [&(dyn ToSql + Sync); 2] = [&addr_id, &addr];
        self.runtime.block_on(async {
            let mut work = Vec::new();
            if !i.id.is_empty() {
                work.push(client.execute(
                    "INSERT INTO interfaces (id, agent_id, name, n, start_ms, state, prior,
                                             down_before_ms, unknown_before_ms, outages,
                                             down_since_ms)
                     SELECT u.id, u.agent_id, u.name, 0, u.start_ms, u.state, u.state, 0, 0,
                            u.outages, u.down_since_ms
                     FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[],
                                 $5::bigint[], $6::bigint[], $7::bigint[])
                          AS u(id, agent_id, name, start_ms, state, outages, down_since_ms)",
                    &interface_params,
                ));
            }
            if !s.iface.is_empty() {
                work.push(client.execute(
                    "INSERT INTO segments (iface_id, start_ms, n, state, prior, down_before_ms,
                                           unknown_before_ms, outages, admin_down_before_ms)
                     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
                                          $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
                                          $9::bigint[])",
                    &segment_params,
                ));
            }
            if !c.at_ms.is_empty() {
                work.push(client.execute(
                    "INSERT INTO link_changes (at_ms, event_id, iface_id, state, down_ms)
                     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
                                          $5::bigint[])",
                    &change_params,
                ));
            }
            if !a.id.is_empty() {
                work.push(client.execute(
                    "INSERT INTO alerts (id, agent_id, boot_id, interface, rule, severity, expr,
                                         value, threshold, message, fired_at_ms, resolved_at_ms,
                                         resolved_value, resolved_message, resolved_by, labels,
                                         silence)
                     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],
                                          $5::text[], $6::text[], $7::text[], $8::float8[],
                                          $9::float8[], $10::text[], $11::bigint[],
                                          $12::bigint[], $13::float8[], $14::text[], $15::text[],
                                          $16::text[], $17::text[])",
                    &alert_params,
                ));
            }
            if !x.id.is_empty() {
                work.push(client.execute(
                    "UPDATE alerts a
                     SET resolved_at_ms = GREATEST(u.at_ms, COALESCE(a.fired_at_ms, u.at_ms)),
                         resolved_value = u.value, resolved_message = u.message,
                         resolved_by = u.by
                     FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::text[], $5::text[])
                          AS u(id, at_ms, value, message, by)
                     WHERE a.id = u.id",
                    &close_params,
                ));
            }
            if !addr_id.is_empty() {
                work.push(client.execute(
                    "UPDATE agents a SET addresses = u.addresses
                     FROM unnest($1::bigint[], $2::text[]) AS u(id, addresses)
                     WHERE a.id = u.id",
                    &address_params,
                ));
            }
            futures_util::future::try_join_all(work).await
        })?;
        Ok(())
    }
}

impl Sink for Bulk<'_> {
    type Error = StoreError;

    fn new_agent(&mut self, name: &str, now_ms: i64) -> Result<i64, StoreError> {
        self.one_i64(
            "INSERT INTO agents (name, last_seen_ms) VALUES ($1, $2) RETURNING id",
            &[&name, &now_ms],
        )
    }

    fn new_boot(&mut self, agent_id: i64, boot: &str, now_ms: i64) -> Result<i64, StoreError> {
        self.one_i64(
            "INSERT INTO boots (agent_id, boot, last_ms) VALUES ($1, $2, $3) RETURNING id",
            &[&agent_id, &boot, &now_ms],
        )
    }

    fn event(
        &mut self,
        boot_id: i64,
        ev: &Incoming,
        _now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        // Taken, so the same event twice in one batch is new once.
        Ok(self.fresh.remove(&(boot_id, ev.seq as i64)))
    }

    fn new_interface(
        &mut self,
        agent_id: i64,
        name: &str,
        seg: &Segment,
        down_since_ms: Option<i64>,
    ) -> Result<i64, StoreError> {
        let id = Self::next_id(
            self.runtime,
            self.client,
            "interfaces",
            &mut self.ids.interfaces,
        )?;
        let i = &mut self.interfaces;
        i.id.push(id);
        i.agent_id.push(agent_id);
        i.name.push(name.to_string());
        i.start_ms.push(seg.start_ms);
        i.state.push(seg.state.code());
        i.outages.push(seg.outages);
        i.down_since_ms.push(down_since_ms);
        self.segment(id, 0, seg)?;
        Ok(id)
    }

    fn segment(&mut self, iface: i64, n: i64, seg: &Segment) -> Result<(), StoreError> {
        let s = &mut self.segments;
        s.iface.push(iface);
        s.start_ms.push(seg.start_ms);
        s.n.push(n);
        s.state.push(seg.state.code());
        s.prior.push(seg.prior.code());
        s.down_before_ms.push(seg.down_before_ms);
        s.unknown_before_ms.push(seg.unknown_before_ms);
        s.outages.push(seg.outages);
        s.admin_down_before_ms.push(seg.admin_down_before_ms);
        Ok(())
    }

    fn change(
        &mut self,
        at: i64,
        event_id: i64,
        iface: i64,
        state: State,
        down_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let c = &mut self.changes;
        c.at_ms.push(at);
        c.event_id.push(event_id);
        c.iface.push(iface);
        c.state.push(state.code());
        c.down_ms.push(down_ms);
        Ok(())
    }

    fn fire(
        &mut self,
        agent_id: i64,
        boot_id: i64,
        alert: &Alert,
        at: i64,
    ) -> Result<i64, StoreError> {
        let id = Self::next_id(self.runtime, self.client, "alerts", &mut self.ids.alerts)?;
        self.push_alert(id, agent_id, boot_id, alert);
        let a = &mut self.alerts;
        a.value.push(alert.value);
        a.message.push(alert.message.clone());
        a.fired_at_ms.push(Some(at));
        a.resolved_at_ms.push(None);
        a.resolved_value.push(None);
        a.resolved_message.push(None);
        a.resolved_by.push(None);
        Ok(id)
    }

    fn close(
        &mut self,
        id: i64,
        at: i64,
        value: Option<f64>,
        message: Option<&str>,
        by: &str,
    ) -> Result<(), StoreError> {
        // Opened in this batch: its row goes in resolved, rather than in
        // and then updated (a quarter of PostgreSQL's time in the ingest
        // bench, where most alerts clear within a batch of firing).
        if let Some(&i) = self.pending.get(&id) {
            let a = &mut self.alerts;
            a.resolved_at_ms[i] = Some(a.fired_at_ms[i].map_or(at, |fired| at.max(fired)));
            a.resolved_value[i] = value;
            a.resolved_message[i] = message.map(str::to_string);
            a.resolved_by[i] = Some(by.to_string());
            return Ok(());
        }
        let x = &mut self.closes;
        x.id.push(id);
        x.at_ms.push(at);
        x.value.push(value);
        x.message.push(message.map(str::to_string));
        x.by.push(by.to_string());
        Ok(())
    }

    fn resolved_unfired(
        &mut self,
        agent_id: i64,
        boot_id: i64,
        alert: &Alert,
        at: i64,
    ) -> Result<(), StoreError> {
        // An id like any other alert's, so the rows go in with the firings.
        let id = self.fire(agent_id, boot_id, alert, at)?;
        let a = &mut self.alerts;
        let last = a.id.len() - 1;
        debug_assert_eq!(a.id[last], id);
        a.value[last] = None;
        a.message[last] = String::new();
        a.fired_at_ms[last] = None;
        a.resolved_at_ms[last] = Some(at);
        a.resolved_value[last] = alert.value;
        a.resolved_message[last] = Some(alert.message.clone());
        a.resolved_by[last] = Some("agent".into());
        Ok(())
    }

    fn addresses(&mut self, agent_id: i64, addresses: &str) -> Result<(), StoreError> {
        self.addresses.insert(agent_id, addresses.to_string());
        Ok(())
    }

    fn unsilence(&mut self, id: i64) -> Result<bool, StoreError> {
        // An alert opened in this batch is not written yet: its pending row
        // changes. One stored before waits for no pending write, since the
        // statement touches only its silence; flushing here cost a batch's
        // worth of statements per refiring alert (a quarter of the writer's
        // time in the PostgreSQL ingest bench).
        if let Some(&i) = self.pending.get(&id) {
            return Ok(self.alerts.silence[i].take().is_some());
        }
        let n = self.runtime.block_on(self.client.execute(
            "UPDATE alerts SET silence = NULL WHERE id = $1 AND silence IS NOT NULL",
            &[&id],
        ))?;
        Ok(n > 0)
    }
}
