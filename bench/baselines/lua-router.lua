-- BASELINE for benchmarks only (not part of pgroute): the smallest in-process router one could
-- write instead of an SPOE agent. A Lua tcp-request action reads the buffered StartupMessage,
-- finds the `database` parameter (PostgreSQL's default: the user name) and stores the backend
-- name in txn.lb.be for use_backend. It also answers SSLRequest/GSSENCRequest with 'N'.

local routes = { bench = "tenant" }

-- SSLRequest / GSSENCRequest: answer 'N', drop the 8 bytes, the StartupMessage comes next.
core.register_action("lb-answer", { "tcp-req" }, function(txn)
  txn.req:remove(0, 8)
  txn.res:send("N")
end, 0)

-- Runs after the config made sure the whole length-prefixed packet is buffered.
core.register_action("lb-route", { "tcp-req" }, function(txn)
  local head = txn.req:data(0, 8)
  if head == nil or #head < 8 then return end
  local len, proto = string.unpack(">I4I4", head)
  if proto ~= 196608 and proto ~= 196610 then return end -- protocol 3.0 / 3.2 only
  local pkt = txn.req:data(0, len)
  local pos, user, db = 9, nil, nil
  while pos < len do
    local kend = string.find(pkt, "\0", pos, true)
    if kend == nil or kend == pos then break end
    local vend = string.find(pkt, "\0", kend + 1, true)
    if vend == nil then break end
    local key = string.sub(pkt, pos, kend - 1)
    if key == "database" then db = string.sub(pkt, kend + 1, vend - 1)
    elseif key == "user" then user = string.sub(pkt, kend + 1, vend - 1) end
    pos = vend + 1
  end
  if db == nil or db == "" then db = user end
  local be = db and routes[db]
  if be ~= nil then txn:set_var("txn.lb.be", be) end
end, 0)
