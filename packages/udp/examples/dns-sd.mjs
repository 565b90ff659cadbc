import { advertise, find } from '@net/udp';

// Loopback only, so the example runs anywhere; leave `interfaces` out to use the LAN.
const interfaces = ['127.0.0.1'];
const ad = await advertise({
  name: 'Example chat',
  type: '_example-chat._tcp',
  port: 8080,
  txt: { ws: '/ws' },
  host: 'example-host',
  interfaces,
});
const [found] = await find('_example-chat._tcp', { interfaces, limit: 1, timeout: 5000 });
console.log(`found ${found?.name} port ${found?.port} ws=${found?.txt.ws}`);
await ad.close();
