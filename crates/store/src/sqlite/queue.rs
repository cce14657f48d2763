//! SQLite: the queue area ([`crate::QueueStore`]).

use super::*;

impl QueueStore for SqliteStore {
    async fn accept(&self, batch: AcceptBatch) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| accept_in(c, &batch))
            .await
    }

    async fn get_idempotency(
        &self,
        tenant_id: &str,
        key_hash: &[u8],
        since: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let (tenant_id, key_hash) = (tenant_id.to_string(), key_hash.to_vec());
        self.read(move |c| {
            c.prepare_cached(
                "SELECT created_at, response_enc FROM idempotency \
                 WHERE tenant_id = ?1 AND key_hash = ?2 AND created_at >= ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant_id, key_hash, since], |r| {
                    Ok(IdempotencyRecord {
                        tenant_id: tenant_id.clone(),
                        key_hash: key_hash.clone(),
                        created_at: r.get(0)?,
                        response_enc: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn get_message(&self, tenant_id: &str, id: &str) -> StoreResult<Option<MessageRecord>> {
        let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
        self.read(move |c| get_message_in(c, &tenant_id, &id)).await
    }

    async fn list_messages(&self, f: MessageFilter) -> StoreResult<Vec<MessageRecord>> {
        self.read(move |c| {
            let mut sql = "SELECT id FROM messages WHERE tenant_id = ?1".to_string();
            let mut args: Vec<rusqlite::types::Value> = vec![f.tenant_id.clone().into()];
            // `clause` names the new parameter `{}`.
            let mut push = |clause: &str, v: rusqlite::types::Value| {
                args.push(v);
                let param = format!("?{}", args.len());
                sql.push_str(&format!(" AND {}", clause.replace("{}", &param)));
            };
            if let Some(s) = &f.stream {
                push("stream = {}", s.clone().into());
            }
            if let Some(t) = &f.tag_hash {
                push(
                    "id IN (SELECT message_id FROM message_tags WHERE tenant_id = ?1 AND tag_hash = {})",
                    t.clone().into(),
                );
            }
            if let Some(h) = &f.rcpt_hash {
                push(
                    "id IN (SELECT message_id FROM recipients WHERE tenant_id = ?1 AND rcpt_hash = {})",
                    h.clone().into(),
                );
            }
            if let Some(s) = f.since {
                push("created_at >= {}", s.into());
            }
            if let Some(u) = f.until {
                push("created_at < {}", u.into());
            }
            if let Some(b) = &f.before_id {
                push("id < {}", b.clone().into());
            }
            sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", f.limit.max(1)));
            let ids = c
                .prepare(&sql)
                .and_then(|mut st| {
                    st.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(unavailable)?;
            ids.iter()
                .filter_map(|id| get_message_in(c, &f.tenant_id, id).transpose())
                .collect()
        })
        .await
    }

    async fn list_events(&self, f: EventFilter) -> StoreResult<Vec<EventRecord>> {
        self.read(move |c| {
            let mut sql = format!("SELECT {EVENT_COLS} FROM events WHERE tenant_id = ?1");
            let mut args: Vec<rusqlite::types::Value> = vec![f.tenant_id.clone().into()];
            // `clause` names the new parameter `{}`.
            let mut push = |clause: &str, v: rusqlite::types::Value| {
                args.push(v);
                let param = format!("?{}", args.len());
                sql.push_str(&format!(" AND {}", clause.replace("{}", &param)));
            };
            if let Some(m) = &f.message_id {
                push("message_id = {}", m.clone().into());
            }
            if let Some(h) = &f.rcpt_hash {
                push("rcpt_hash = {}", h.clone().into());
            }
            if let Some(t) = f.event_type {
                push("type = {}", t.as_str().to_string().into());
            }
            if let Some(s) = f.since {
                push("at >= {}", s.into());
            }
            if let Some(u) = f.until {
                push("at < {}", u.into());
            }
            if let Some(s) = &f.stream {
                push(
                    "(stream = {} OR message_id IN (SELECT id FROM messages WHERE tenant_id = ?1 AND stream = {}))",
                    s.clone().into(),
                );
            }
            if let Some(t) = &f.tag_hash {
                push(
                    "message_id IN (SELECT message_id FROM message_tags WHERE tenant_id = ?1 AND tag_hash = {})",
                    t.clone().into(),
                );
            }
            if let Some(a) = f.after_seq {
                push("seq > {}", a.into());
            }
            sql.push_str(&format!(" ORDER BY seq LIMIT {}", f.limit.max(1)));
            let mut stmt = c.prepare(&sql).map_err(unavailable)?;
            stmt.query_map(rusqlite::params_from_iter(args), |r| event_row(r))
                .map_err(unavailable)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(unavailable)
        })
        .await
    }

    async fn claim_due(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> StoreResult<Vec<DueRecipient>> {
        let node = node.to_string();
        self.writer.write(Durability::Process, move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "UPDATE recipients SET lease_node = ?1, lease_until = ?2 WHERE id IN (\
                           SELECT id FROM recipients WHERE next_attempt_at <= ?3 \
                           AND (lease_until IS NULL OR lease_until < ?3) ORDER BY next_attempt_at LIMIT ?4) \
                         RETURNING id, message_id, tenant_id, rcpt_hash, address_enc, domain, attempts, \
                           (SELECT expires_at FROM messages m WHERE m.id = recipients.message_id)",
                    )
                    .map_err(unavailable)?;
                stmt.query_map(params![node, lease_until, now, limit as i64], |r| {
                    Ok(DueRecipient {
                        id: r.get(0)?,
                        message_id: r.get(1)?,
                        tenant_id: r.get(2)?,
                        rcpt_hash: r.get(3)?,
                        address_enc: r.get(4)?,
                        domain: r.get(5)?,
                        attempts: r.get(6)?,
                        expires_at: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                    })
                })
                .map_err(unavailable)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(unavailable)
            })
            .await
    }

    async fn renew_leases(&self, node: &str, lease_until: i64) -> StoreResult<()> {
        let node = node.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                c.execute(
                    "UPDATE recipients SET lease_until = ?2 WHERE lease_node = ?1",
                    params![node, lease_until],
                )
                .map_err(unavailable)?;
                Ok(())
            })
            .await
    }

    async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        let node = node.to_string();
        self.writer.write(Durability::Process, move |c| {
                c.execute("UPDATE recipients SET lease_node = NULL, lease_until = NULL WHERE lease_node = ?1", [node])
                    .map(|n| n as u64)
                    .map_err(unavailable)
            })
            .await
    }

    async fn release_recipients(&self, node: &str, ids: Vec<String>) -> StoreResult<u64> {
        let node = node.to_string();
        self.writer
            .write(Durability::Process, move |c| {
                let mut st = c
                    .prepare_cached(
                        "UPDATE recipients SET lease_node = NULL, lease_until = NULL \
                         WHERE id = ?1 AND lease_node = ?2",
                    )
                    .map_err(unavailable)?;
                ids.iter().try_fold(0u64, |n, id| {
                    st.execute(params![id, node])
                        .map(|k| n + k as u64)
                        .map_err(unavailable)
                })
            })
            .await
    }

    async fn load_content(&self, message_id: &str) -> StoreResult<Option<MessageContent>> {
        let id = message_id.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT tenant_id, stream, from_domain, content_enc, mail_from_enc FROM messages WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(MessageContent {
                        tenant_id: r.get(0)?,
                        stream: r.get(1)?,
                        from_domain: r.get(2)?,
                        content_enc: r.get(3)?,
                        mail_from_enc: r.get(4)?,
                    })
                })
                .optional()
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn record_deliveries(&self, updates: Vec<DeliveryUpdate>) -> StoreResult<()> {
        self.writer.write(Durability::Process, move |c| {
                let mut upd = c
                    .prepare_cached(&format!(
                        "UPDATE recipients AS r SET status = ?2, next_attempt_at = ?3, attempts = attempts + 1, \
                         lease_node = NULL, lease_until = NULL, updated_at = ?4 WHERE id = ?1 AND {}",
                        crate::queue_sql::outcome_applies("r", "?2")
                    ))
                    .map_err(unavailable)?;
                for u in &updates {
                    upd.execute(params![u.recipient_id, u.status.as_str(), u.next_attempt_at, u.at])
                        .map_err(unavailable)?;
                }
                insert_events(c, &updates.iter().map(EventRow::from).collect::<Vec<_>>())?;
                add_stats(c, updates.iter().map(|u| (u.tenant_id.as_str(), u.at, &u.dims, u.event)))
            })
            .await
    }

    async fn find_recipient(&self, recipient_id: &str) -> StoreResult<Option<RecipientRef>> {
        let id = recipient_id.to_string();
        self.read(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT r.message_id, r.tenant_id, m.stream, r.rcpt_hash, r.address_enc, r.status \
                     FROM recipients r JOIN messages m ON m.id = r.message_id WHERE r.id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([&id], |r| {
                        Ok((
                            RecipientRef {
                                id: id.clone(),
                                message_id: r.get(0)?,
                                tenant_id: r.get(1)?,
                                stream: r.get(2)?,
                                rcpt_hash: r.get(3)?,
                                address_enc: r.get(4)?,
                                status: RecipientStatus::Queued,
                            },
                            r.get::<_, String>(5)?,
                        ))
                    })
                    .optional()
                })
                .map_err(unavailable)?;
            row.map(|(mut rec, status)| {
                rec.status = status.parse().map_err(|_| corrupt("recipient status"))?;
                Ok(rec)
            })
            .transpose()
        })
        .await
    }

    async fn record_reports(&self, updates: Vec<ReportUpdate>) -> StoreResult<()> {
        self.writer
            .write(Durability::Fsync, move |c| {
                for u in &updates {
                    if let Some(status) = u.status_if_delivered {
                        c.prepare_cached(
                            "UPDATE recipients SET status = ?2, updated_at = ?3 \
                         WHERE id = ?1 AND status = 'delivered'",
                        )
                        .and_then(|mut st| {
                            st.execute(params![u.recipient_id, status.as_str(), u.at])
                        })
                        .map_err(unavailable)?;
                    }
                }
                insert_events(c, &updates.iter().map(EventRow::from).collect::<Vec<_>>())?;
                add_stats(
                    c,
                    updates
                        .iter()
                        .map(|u| (u.tenant_id.as_str(), u.at, &u.dims, u.event)),
                )
            })
            .await
    }

    async fn queue_action(
        &self,
        sel: QueueSelector,
        action: QueueAction,
        at: i64,
    ) -> StoreResult<u64> {
        self.queue_action_tx(sel, action, at).await
    }

    async fn queue_depth(&self, tenant_id: Option<&str>) -> StoreResult<Vec<QueueDepth>> {
        self.queue_depth_q(tenant_id.map(str::to_string)).await
    }

    async fn backlog(&self) -> StoreResult<Backlog> {
        self.read(|c| {
            let mut st = c.prepare_cached(BACKLOG_SQL).map_err(unavailable)?;
            let streams = st
                .query_map([], |r| {
                    Ok(StreamBacklog {
                        stream: r.get(0)?,
                        recipients: r.get::<_, i64>(1)? as u64,
                        oldest_created_at: r.get(2)?,
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(unavailable)?;
            let webhook_deliveries: i64 = c
                .prepare_cached(WEBHOOK_BACKLOG_SQL)
                .and_then(|mut st| st.query_row([], |r| r.get(0)))
                .map_err(unavailable)?;
            Ok(Backlog {
                streams,
                webhook_deliveries: webhook_deliveries as u64,
            })
        })
        .await
    }
}
