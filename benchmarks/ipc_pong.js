// ipc_pong.js - forked by node_peers.js (ipc-roundtrip): echoes every message.
'use strict';
process.on('message', (m) => process.send(m));
