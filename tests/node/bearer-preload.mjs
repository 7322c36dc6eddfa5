// Adds `Authorization: Bearer $MCPGATE_BEARER` to every HTTP request a Node tool sends to
// $MCPGATE_BEARER_ORIGIN, so tools without OAuth (the MCP conformance suite) can run through
// mcpgate. Tools send requests two ways, and both are covered: undici (the global `fetch`
// and undici's `request`, through the global dispatcher) and `node:http` (`request` and
// `get`, also as ESM named imports). A request that already carries an Authorization header
// keeps it.
//
// Usage: node --import ./bearer-preload.mjs tool.js …
import http from 'node:http';
import { syncBuiltinESMExports } from 'node:module';

const token = process.env.MCPGATE_BEARER;
const origin = process.env.MCPGATE_BEARER_ORIGIN;
if (!token || !origin) {
  throw new Error('bearer-preload: set MCPGATE_BEARER and MCPGATE_BEARER_ORIGIN');
}
const bearer = `Bearer ${token}`;
const ours = (url) => {
  try {
    return new URL(url).origin === origin;
  } catch {
    return false;
  }
};

// undici: the global `fetch` and undici's own `request` (which tools bundle) both send
// through the process-wide dispatcher that undici keeps under this symbol. Touching `fetch`
// makes Node create it; every dispatch through it then gets the header.
const DISPATCHER = Symbol.for('undici.globalDispatcher.1');
void globalThis.fetch;
const dispatcher = globalThis[DISPATCHER];
if (!dispatcher) {
  throw new Error('bearer-preload: no global undici dispatcher to wrap');
}
const hasAuthorization = (headers) => {
  if (!headers) return false;
  if (Array.isArray(headers)) {
    return headers.some((v, i) => i % 2 === 0 && String(v).toLowerCase() === 'authorization');
  }
  return Object.keys(headers).some((k) => k.toLowerCase() === 'authorization');
};
const addAuthorization = (headers) => {
  if (hasAuthorization(headers)) return headers;
  if (!headers) return { authorization: bearer };
  if (Array.isArray(headers)) return [...headers, 'authorization', bearer];
  return { ...headers, authorization: bearer };
};
globalThis[DISPATCHER] = new Proxy(dispatcher, {
  get(target, prop, receiver) {
    if (prop === 'dispatch') {
      return (opts, handler) => {
        const origin = opts.origin ? new URL(String(opts.origin)).origin : null;
        const next = origin === new URL(targetOrigin).origin
          ? { ...opts, headers: addAuthorization(opts.headers) }
          : opts;
        return target.dispatch(next, handler);
      };
    }
    const value = Reflect.get(target, prop, target);
    return typeof value === 'function' && prop !== 'constructor' ? value.bind(receiver) : value;
  },
});
const targetOrigin = origin;

// node:http: (url[, options][, cb]) or (options[, cb]).
function withBearer(original) {
  return function (...args) {
    let url = null;
    let options = null;
    if (typeof args[0] === 'string' || args[0] instanceof URL) {
      url = new URL(String(args[0]));
      if (args[1] && typeof args[1] === 'object') options = args[1];
    } else if (args[0] && typeof args[0] === 'object') {
      options = args[0];
      const port = options.port ? `:${options.port}` : '';
      const host = options.hostname ?? options.host ?? 'localhost';
      url = new URL(`${options.protocol ?? 'http:'}//${host}${port}`);
    }
    if (url && ours(url.href)) {
      if (!options) {
        options = {};
        args.splice(1, 0, options);
      }
      const headers = { ...(options.headers ?? {}) };
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) {
        headers.authorization = bearer;
      }
      options.headers = headers;
    }
    return original.apply(this, args);
  };
}
http.request = withBearer(http.request);
http.get = withBearer(http.get);
syncBuiltinESMExports();
