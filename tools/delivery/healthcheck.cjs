// The image's HEALTHCHECK (Docker, Compose; Kubernetes uses its own probes): GET /health/live on the
// service's port, over plain HTTP behind the mesh (MESH_MODE=true) or over mutual TLS with the
// service's own certificate off it. Exit 0 when it answers 200.
const { request: http } = require('node:http');
const { request: https } = require('node:https');
const { readFileSync } = require('node:fs');

const port = Number(process.env.PORT);
const mesh = process.env.MESH_MODE === 'true';
const options = { host: '127.0.0.1', port, path: '/health/live', method: 'GET', timeout: 2000 };
if (!mesh) {
  options.ca = readFileSync(process.env.TLS_CA_FILE);
  options.cert = readFileSync(process.env.TLS_CERT_FILE);
  options.key = readFileSync(process.env.TLS_KEY_FILE);
  options.servername = 'localhost';
}
const req = (mesh ? http : https)(options, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => process.exit(1));
req.end();
