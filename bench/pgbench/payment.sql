-- pgbench's side of the end-to-end bench (host/benches/payments, README "Performance"): the SQL
-- the host runs on PostgreSQL for one `POST /api/v1/payments` under a new Idempotency-Key, as
-- written in services/payments/src/repo/keyed.rs (keep the two in step):
--   1. `open_keyed`, committed durably: the lease check, the key claimed `in_flight`, the payment
--      inserted `pending` with its first provider call claimed (one statement, data-modifying CTEs);
--   2. `finish_keyed`, committed with synchronous_commit off: the payment moved to `succeeded`, the
--      installment (none here), the `payment.completed` outbox row and the key's stored answer.
-- The values the host binds are made up here with the same shapes and sizes. The outbox rows go
-- to the stream `pgbench` so the host's relay (which publishes `payments`) leaves them alone, and
-- its payments have provider_tx_id `pgbench-…` so the bench tells them from the host's.
-- Variables (pgbench -D): lease (an active lease's id), owner (its owner's user id). Run with
-- `-M prepared`: the host's statements are prepared once per connection (sqlx), so pgbench's are
-- too. Variables are therefore parameters: never inside quotes, and no `:` before a letter in the
-- text (pgbench would take it for a variable), hence chr(58) and json_build_object.
\set amount random(100, 100000)
WITH ids AS (SELECT gen_random_uuid() AS pid, gen_random_uuid() AS lock_token,
                    (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms),
     lease AS (SELECT l.owner_id FROM leases l
               WHERE l.id = :lease::uuid AND l.status = 'active' AND l.currency = 'EUR'
               AND (false OR l.owner_id = :owner::uuid)
               AND (NULL::uuid IS NULL OR EXISTS (SELECT 1 FROM installments i WHERE i.id = NULL::uuid
                    AND i.lease_id = l.id AND i.amount = :amount::bigint AND i.currency = 'EUR' AND i.status <> 'paid'))),
     claim AS (INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, state, lock_token, locked_until,
                                             resource_id, created_at, expires_at)
               SELECT concat_ws(chr(58), 'user', :owner::text, 'create-payment'), 'pgbench-' || ids.pid,
                      md5(ids.pid::text) || md5(ids.lock_token::text), 'in_flight', ids.lock_token,
                      ids.now_ms + 60000, ids.pid, ids.now_ms, ids.now_ms + 60000 + 86400000
               FROM lease, ids
               ON CONFLICT (scope, idempotency_key) DO NOTHING RETURNING lock_token, resource_id, idempotency_key)
INSERT INTO payments (id, lease_id, installment_id, owner_id, amount, currency, provider, payment_method,
                      idempotency_key, status, process_attempts, reconcile_after, created_at, updated_at)
SELECT claim.resource_id, :lease::uuid, NULL, lease.owner_id, :amount::bigint, 'EUR', 'echo', 'tok_bench',
       'lessor-pay-' || claim.resource_id, 'pending', 1, ids.now_ms + 30000, now(), now()
FROM lease, claim, ids
RETURNING id, lease_id, installment_id, owner_id, amount, currency, provider, status, provider_tx_id,
          next_action_url, failure_code, failure_message, return_reason, refunded_amount, refund_pending_amount,
          process_attempts, reconcile_after, needs_attention, created_at, updated_at, payment_method,
          idempotency_key, (SELECT lock_token FROM claim) AS lock_token, (SELECT idempotency_key FROM claim) AS key
\gset p_
WITH moved AS (UPDATE payments SET status = 'succeeded', provider_tx_id = 'pgbench-' || :p_id::text,
                      next_action_url = NULL, failure_code = NULL, failure_message = NULL, reconcile_after = NULL,
                      updated_at = now()
               WHERE id = :p_id::uuid AND status = 'pending' AND process_attempts = 1 AND needs_attention = FALSE
               RETURNING id),
     paid AS (UPDATE installments SET status = 'paid'
              WHERE id = NULL::uuid AND status IN ('due', 'overdue') AND EXISTS (SELECT 1 FROM moved)),
     event AS (INSERT INTO event_outbox (stream, event_id, event_type, payload, created_at)
               SELECT 'pgbench', gen_random_uuid(), 'payment.completed',
                      json_build_object('schema', 'lessor.event/1', 'id', gen_random_uuid(), 'type', 'payment.completed',
                          'occurred_at', clock_timestamp(), 'data', json_build_object('payment_id', :p_id::text,
                          'lease_id', :lease::text, 'amount', :amount::bigint, 'currency', 'EUR', 'provider', 'echo',
                          'provider_tx_id', 'pgbench-' || :p_id::text))::text,
                      (extract(epoch FROM clock_timestamp()) * 1000)::bigint
               FROM moved),
     done AS (UPDATE idempotency_keys SET state = 'completed', response_status = 201,
                     response_body = json_build_object('id', :p_id::text, 'lease_id', :lease::text,
                         'installment_id', NULL, 'amount', :amount::bigint, 'currency', 'EUR', 'provider', 'echo',
                         'status', 'succeeded', 'provider_tx_id', 'pgbench-' || :p_id::text, 'next_action_url', NULL,
                         'failure_code', NULL, 'failure_message', NULL, 'refunded_amount', 0, 'chain_status', 'pending',
                         'blockchain_tx_hash', NULL, 'created_at', now(), 'updated_at', now())::text
              WHERE scope = concat_ws(chr(58), 'user', :owner::text, 'create-payment') AND idempotency_key = :p_key::text
                AND lock_token = :p_lock_token::uuid AND state = 'in_flight' AND EXISTS (SELECT 1 FROM moved)
              RETURNING 1)
SELECT (SELECT COUNT(*) FROM moved) AS moved, (SELECT COUNT(*) FROM done) AS done,
       set_config('synchronous_commit', 'off', true) AS async_commit;
