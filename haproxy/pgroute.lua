-- pgroute's only code inside HAProxy: it writes the bytes HAProxy cannot write to a TCP client.
-- It holds no tenant logic and no state; every decision is made by the pgroute agent (SPOE).

-- Answer an 8-byte SSLRequest or GSSENCRequest with one byte ('N', or 'S' once TLS is on) and
-- drop the request from the buffer, so the next packet (the StartupMessage) is read next.
core.register_action("pgroute-answer", { "tcp-req" }, function(txn, answer)
  txn.req:remove(0, 8)
  txn.res:send(answer)
end, 1)

-- Send the PostgreSQL ErrorResponse held in txn.pgr.err (composed by the agent, or by the
-- generator for refusals made before the agent is asked) and end the session; first wait
-- txn.pgr.delay milliseconds when the rules set it (partials/refusal-delay.hbs: a refusal over a
-- tenant's rate or cap, so that a reconnect loop is slowed down instead of spinning).
core.register_action("pgroute-refuse", { "tcp-req" }, function(txn)
  local delay = txn:get_var("txn.pgr.delay")
  if delay ~= nil then
    core.msleep(delay)
  end
  local reply = txn:get_var("txn.pgr.err")
  if reply ~= nil then
    txn.res:send(reply)
  end
  txn:done()
end, 0)
