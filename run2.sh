#!/bin/bash
H=$1
cd /tmp/ha-exp
rm -f a.sock b.sock
$H -c -f ar.cfg -q || exit 1
$H -f ar.cfg -D -p a.pid; $H -f br.cfg -D -p b.pid
sleep 4
st() { for n in a b; do echo "  $n: $(python3 q.py $n.sock 'show table pgroute-cancels-a' | grep key | sed 's/^0x[0-9a-f]*: //; s/use=0 //; s/shard=0 //')"; done; }
hit() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; cat <&3 >/dev/null" 2>/dev/null; }
echo "first (acme)"; hit 23050; sleep 1; st
sleep 4; hit 23050; sleep 1; echo "again acme after 4s (expect no push: exp keeps falling)"; st
sleep 2; hit 23051; sleep 1; echo "globex (new id: push)"; st
sleep 3; hit 23050; sleep 1; echo "acme again (known: no push)"; st
python3 q.py a.sock 'set table pgroute-cancels-a key ::ffff:127.0.0.1 data.gpt8 1' >/dev/null 2>&1
kill $(cat a.pid) $(cat b.pid)
