//! What the collector alone knows of each hop's egress (firing alerts, recent link changes, downtime), read from the store in one go.
