// ipc_first.js - forked by node_peers.js (fork-first): sends one message as
// soon as it runs, then ends (no 'message' listener keeps it alive).
'use strict';
process.send('ready');
