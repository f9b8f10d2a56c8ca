// ipc_sink.js - forked by node_peers.js (ipc-oneway): counts messages; 'end'
// is answered with the count since the last 'end'.
'use strict';
let count = 0;
process.on('message', (m) => {
  if (m === 'end') {
    process.send(count);
    count = 0;
  } else {
    count++;
  }
});
