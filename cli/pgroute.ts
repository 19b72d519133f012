#!/usr/bin/env node
// The pgroute command line: one entry point for operators.

import { Command, Option } from 'commander';
import { startAgent } from '../agent/src/agent.js';
import { loadRouteTable, RouteStore } from '../agent/src/routes-store.js';
import { ConfigError } from '../generator/src/errors.js';
import { generate } from '../generator/src/generate.js';
import { readTenantsFile } from '../generator/src/sources/file.js';
import { DEFAULT_AGENT_HTTP_PORT, DEFAULT_AGENT_PORT } from '../generator/src/settings.js';
import { createLogger } from './logger.js';
import { reportRefused } from './report.js';
import { addDeploymentFlags, parsePort, settingsFromFlags, type DeploymentFlags } from './settings-options.js';
import { up } from './up.js';
import { runUntilSignal } from './signals.js';

const log = createLogger();
const program = new Command('pgroute')
  .description('One public PostgreSQL port for many tenants: HAProxy routes each connection by the pgroute agent\'s verdict.')
  .showHelpAfterError();

addDeploymentFlags(
  program
    .command('generate')
    .description('render haproxy.cfg, spoe.conf and routes.json from a tenants file and validate them with haproxy -c')
    .requiredOption('--tenants <file>', 'tenants file (YAML)'),
).action(async (flags: DeploymentFlags & { tenants: string }) => {
  const { settings, fallbackListener } = settingsFromFlags(flags);
  const file = await readTenantsFile(flags.tenants, fallbackListener);
  reportRefused(log, file.snapshot.refused);
  const g = await generate(file.deployment, file.snapshot, settings);
  log.info({ haproxyConfig: g.paths.haproxyConfig, routes: g.paths.routes, version: g.routes.version, changed: g.configChanged || g.routesChanged }, 'generated and validated');
});

program
  .command('agent')
  .description('run the SPOE agent alone, deciding with a routes.json written by `pgroute generate`')
  .requiredOption('--routes <file>', 'routes.json (reloaded on SIGHUP)')
  .addOption(new Option('--host <address>', 'SPOP listen address').default('127.0.0.1').env('PGROUTE_AGENT_HOST'))
  .addOption(new Option('--port <port>', 'SPOP listen port').default(String(DEFAULT_AGENT_PORT)).env('PGROUTE_AGENT_PORT'))
  .addOption(new Option('--http-port <port>', '/healthz and /metrics port').default(String(DEFAULT_AGENT_HTTP_PORT)).env('PGROUTE_AGENT_HTTP_PORT'))
  .action(async (flags: { routes: string; host: string; port: string; httpPort: string }) => {
    const store = new RouteStore(await loadRouteTable(flags.routes));
    const agent = await startAgent({
      listen: { host: flags.host, port: parsePort('--port', flags.port) },
      http: { host: flags.host, port: parsePort('--http-port', flags.httpPort) },
      store,
      log,
    });
    process.on('SIGHUP', () => {
      loadRouteTable(flags.routes).then(
        (table) => {
          store.replace(table);
          log.info({ version: table.version, tenants: table.tenants.size }, 'route table reloaded');
        },
        (err: Error) => log.error({ err: err.message }, 'route table reload failed; keeping the previous one'),
      );
    });
    await runUntilSignal(log, () => agent.close());
  });

addDeploymentFlags(
  program
    .command('up')
    .description('run HAProxy and the agent on this machine in the foreground (Ctrl-C stops both)')
    .requiredOption('--tenants <file>', 'tenants file (YAML)'),
).action(async (flags: DeploymentFlags & { tenants: string }) => {
  const { settings, fallbackListener, agentHttpPort } = settingsFromFlags(flags);
  const running = await up({ tenantsFile: flags.tenants, settings, fallbackListener, agentHttpPort, log });
  process.exitCode = await runUntilSignal(log, () => running.stop(), running.done);
});

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    log.error(err.message);
    process.stderr.write(`pgroute: ${err.message}\n`);
    process.exit(2);
  }
  log.fatal({ err }, 'pgroute failed');
  process.stderr.write(`pgroute: ${(err as Error).message}\n`);
  process.exit(1);
});
