#!/usr/bin/env node
// A toncenter-v2-compatible HTTP API over a real TVM (@ton/sandbox), for lessor-chain's tests.
//
// Usage: node server.js [port]      (or PORT=…; 0 picks a free port)
// The first line on stdout is the port it listens on; logs go to stderr.
//
// toncenter v2 endpoints (under /api/v2/, answers `{"ok":true,"result":…}` or
// `{"ok":false,"error":…,"code":…}` with that HTTP status):
//   GET  getWalletInformation?address=      GET getAddressInformation?address=
//   POST runGetMethod {address, method, stack}
//   POST sendBoc {boc} / sendBocReturnHash {boc}   (base64 BOC of an external-in message)
//   GET  getTransactions?address=&limit=&lt=&hash=&to_lt=
//   GET  getMasterchainInfo
// With TON_PEER_API_KEY set, every API request needs a matching `X-API-Key` header (or
// `api_key` query parameter), as toncenter does for keyed access.
//
// Test-only endpoints (under /_test/, plain JSON):
//   POST fund {address, amount}           credit nanotons from a treasury (non-bounceable)
//   POST advanceTime {seconds}            move the chain clock forward; GET time
//   POST faults {status, count, delay_ms} answer `status` (429, 500, …) to the next `count`
//                                         API requests; delay_ms instead delays them
//   POST hold {enabled}                   keep accepted external messages without executing
//                                         them (a mempool), until POST release
//   POST release                          execute the held messages in arrival order
//   GET  transfers?wallet=                executed external messages of a wallet: seqno before
//                                         and after, and the internal messages they sent
//   GET  stats                            request counters
//
// An external message is executed by the real wallet contract: a bad signature, a stale seqno
// or an expired valid_until is refused the way a liteserver refuses it (sendBoc answers an
// error and nothing happens on chain). In hold mode the message is checked against the
// current state first (as a liteserver does) and executed later, when it may have expired.

'use strict';

const http = require('node:http');
const { Blockchain } = require('@ton/sandbox');
const { Address, Cell, beginCell, loadMessage, storeMessage, storeStateInit } = require('@ton/core');

// Code hashes of the wallet contracts toncenter recognises (base64 of the code cell hash).
const WALLET_TYPES = {
    '/rX/aCDi/w2Ug+fg1iyBfYRniftK5YDIeIZtlZ2r1cA=': 'wallet v4 r2',
    'IINLe3KxEhR+Gy+0V7hOdNGjDwT3N9T2KmaOlVLSty8=': 'wallet v5 r1',
};

const state = {
    chain: null,
    treasury: null,
    offset: 0, // seconds added to the wall clock: the chain's `now`
    faults: { status: 0, count: 0, delayMs: 0 },
    hold: false,
    held: [], // external message cells accepted but not yet executed
    txs: new Map(), // raw address -> [transaction JSON], newest first
    transfers: new Map(), // raw address -> [executed external messages]
    stats: { requests: 0, faulted: 0, fault_times: [], sent: 0, rejected: 0, executed: 0, dropped: 0, methods: {} },
    apiKey: process.env.TON_PEER_API_KEY || '',
};

// One chain operation at a time: the sandbox is not re-entrant across awaits.
let queue = Promise.resolve();
function locked(fn) {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
}

function nowSec() {
    return Math.floor(Date.now() / 1000) + state.offset;
}

function tick() {
    state.chain.now = nowSec();
}

class ApiError extends Error {
    constructor(code, message) {
        super(message);
        this.code = code;
    }
}

function parseAddress(raw) {
    try {
        return Address.parse(String(raw ?? ''));
    } catch {
        throw new ApiError(416, 'Incorrect address');
    }
}

function friendly(address) {
    return address.toString({ bounceable: true, urlSafe: true });
}

function messageHashNorm(cell) {
    // TEP-467: ext_in_msg_info with src addr_none, import_fee 0, no init, body as a reference.
    const msg = loadMessage(cell.beginParse());
    return beginCell()
        .storeUint(2, 2)
        .storeUint(0, 2)
        .storeAddress(msg.info.dest)
        .storeCoins(0)
        .storeBit(false)
        .storeBit(true)
        .storeRef(msg.body)
        .endCell()
        .hash();
}

function commentOf(body) {
    try {
        const s = body.beginParse();
        if (s.remainingBits < 32 || s.loadUint(32) !== 0) return null;
        return s.loadStringTail();
    } catch {
        return null;
    }
}

function addressJson(addr) {
    if (!addr) return '';
    if (Address.isAddress(addr)) return friendly(addr);
    return ''; // external addresses (addr_none / addr_extern) show as empty, like toncenter
}

function messageJson(cell) {
    const msg = loadMessage(cell.beginParse());
    const info = msg.info;
    const text = commentOf(msg.body);
    const internal = info.type === 'internal';
    return {
        '@type': 'raw.message',
        hash: cell.hash().toString('base64'),
        hash_norm: info.type === 'external-in' ? messageHashNorm(cell).toString('base64') : undefined,
        source: addressJson(info.src),
        destination: addressJson(info.dest),
        value: internal ? info.value.coins.toString() : '0',
        extra_currencies: [],
        fwd_fee: internal ? info.forwardFee.toString() : '0',
        ihr_fee: internal ? info.ihrFee.toString() : '0',
        created_lt: internal || info.type === 'external-out' ? info.createdLt.toString() : '0',
        body_hash: msg.body.hash().toString('base64'),
        msg_data:
            text !== null
                ? { '@type': 'msg.dataText', text: Buffer.from(text, 'utf8').toString('base64') }
                : {
                      '@type': 'msg.dataRaw',
                      body: msg.body.toBoc().toString('base64'),
                      init_state: msg.init ? beginCell().store(storeStateInit(msg.init)).endCell().toBoc().toString('base64') : '',
                  },
        message: text ?? '',
    };
}

// The message cells of a transaction exactly as executed: `^[in_msg:(Maybe ^Message) out_msgs:(HashmapE 15 ^Message)]`.
function messageCells(tx) {
    const s = tx.raw.beginParse();
    s.skip(4 + 256 + 64 + 256 + 64 + 32 + 15); // tag, account, lt, prev hash, prev lt, now, outmsg_cnt
    const io = s.loadRef().beginParse();
    const inMsg = io.loadBit() ? io.loadRef() : null;
    const outs = [];
    for (const [, message] of tx.outMessages) {
        outs.push(beginCell().store(storeMessage(message)).endCell());
    }
    return { inMsg, outs };
}

function transactionJson(tx, account) {
    const { inMsg, outs } = messageCells(tx);
    const fees = tx.totalFees.coins;
    const storage = tx.description.storagePhase ? tx.description.storagePhase.storageFeesCollected : 0n;
    return {
        '@type': 'raw.transaction',
        address: { '@type': 'accountAddress', account_address: friendly(account) },
        utime: tx.now,
        data: tx.raw.toBoc().toString('base64'),
        transaction_id: { '@type': 'internal.transactionId', lt: tx.lt.toString(), hash: tx.hash().toString('base64') },
        fee: fees.toString(),
        storage_fee: storage.toString(),
        other_fee: (fees - storage).toString(),
        in_msg: inMsg ? messageJson(inMsg) : undefined,
        out_msgs: outs.map(messageJson),
    };
}

function accountOf(tx) {
    const dest = tx.inMessage && tx.inMessage.info.dest;
    if (Address.isAddress(dest)) return dest;
    return new Address(0, Buffer.from(tx.address.toString(16).padStart(64, '0'), 'hex'));
}

function record(transactions) {
    for (const tx of transactions) {
        const account = accountOf(tx);
        const key = account.toRawString();
        if (!state.txs.has(key)) state.txs.set(key, []);
        state.txs.get(key).unshift(transactionJson(tx, account));
    }
}

async function contractState(address) {
    const contract = await state.chain.getContract(address);
    const account = contract.accountState;
    let accountState = 'uninitialized';
    let code = null;
    let data = null;
    if (account && account.type === 'active') {
        accountState = 'active';
        code = account.state.code;
        data = account.state.data;
    } else if (account && account.type === 'frozen') {
        accountState = 'frozen';
    }
    return { contract, accountState, code, data };
}

async function seqnoOf(address) {
    const { contract, accountState } = await contractState(address);
    if (accountState !== 'active') return null;
    try {
        const res = await contract.get('seqno');
        return res.stackReader.readNumber();
    } catch {
        return null;
    }
}

function lastTransactionId(contract) {
    const lt = contract.lastTransactionLt;
    const hash = contract.lastTransactionHash;
    return {
        '@type': 'internal.transactionId',
        lt: lt.toString(),
        hash: Buffer.from(hash.toString(16).padStart(64, '0'), 'hex').toString('base64'),
    };
}

// Runs one external message on chain; throws ApiError(500) when the contract does not accept it.
async function execute(cell, { dryRun = false } = {}) {
    tick();
    const msg = loadMessage(cell.beginParse());
    const dest = msg.info.dest;
    const seqnoBefore = await seqnoOf(dest);
    let result;
    try {
        result = await state.chain.sendMessage(cell);
    } catch (e) {
        const reason = (e && (e.error || e.message)) || String(e);
        const exit = e && e.exitCode !== undefined ? ` (exit code ${e.exitCode})` : '';
        throw new ApiError(
            500,
            `LITE_SERVER_UNKNOWN: cannot apply external message to current state : External message was not accepted${exit}: ${reason}`,
        );
    }
    if (dryRun) return;
    record(result.transactions);
    const walletTx = result.transactions.find((tx) => tx.inMessage && tx.inMessage.info.type === 'external-in');
    const outs = [];
    if (walletTx) {
        for (const [, out] of walletTx.outMessages) {
            if (out.info.type !== 'internal') continue;
            outs.push({
                destination: out.info.dest.toRawString(),
                value: out.info.value.coins.toString(),
                bounce: out.info.bounce,
                comment: commentOf(out.body),
            });
        }
    }
    const key = dest.toRawString();
    if (!state.transfers.has(key)) state.transfers.set(key, []);
    state.transfers.get(key).push({
        hash: cell.hash().toString('hex'),
        lt: walletTx ? walletTx.lt.toString() : null,
        utime: walletTx ? walletTx.now : null,
        seqno_before: seqnoBefore,
        seqno_after: await seqnoOf(dest),
        messages: outs,
    });
    state.stats.executed += 1;
}

async function precheck(cell) {
    const snapshot = state.chain.snapshot();
    try {
        await execute(cell, { dryRun: true });
    } finally {
        await state.chain.loadFrom(snapshot);
    }
}

function decodeBoc(boc) {
    let cell;
    try {
        const cells = Cell.fromBoc(Buffer.from(String(boc ?? ''), 'base64'));
        if (cells.length !== 1) throw new Error('expected one root');
        cell = cells[0];
        const msg = loadMessage(cell.beginParse());
        if (msg.info.type !== 'external-in') throw new Error('not an external inbound message');
    } catch (e) {
        throw new ApiError(400, `Failed to deserialize boc: ${e.message}`);
    }
    // The sandbox re-serialises a message before executing it; say so if that changes its hash.
    const again = beginCell().store(storeMessage(loadMessage(cell.beginParse()))).endCell();
    if (!again.hash().equals(cell.hash())) {
        process.stderr.write(`ton-peer: warning: message layout is not canonical; the chain sees hash ${again.hash().toString('hex')}\n`);
    }
    return cell;
}

async function sendBoc(body) {
    const cell = decodeBoc(body.boc);
    state.stats.sent += 1;
    try {
        if (state.hold) {
            await precheck(cell);
            state.held.push(cell);
        } else {
            await execute(cell);
        }
    } catch (e) {
        state.stats.rejected += 1;
        throw e;
    }
    return cell;
}

const api = {
    async getWalletInformation(q) {
        tick();
        const address = parseAddress(q.address);
        const { contract, accountState, code, data } = await contractState(address);
        const res = {
            wallet: false,
            balance: contract.balance.toString(),
            extra_currencies: [],
            account_state: accountState,
            last_transaction_id: lastTransactionId(contract),
        };
        if (accountState === 'active') {
            const type = WALLET_TYPES[code.hash().toString('base64')];
            const seqno = await seqnoOf(address);
            if (seqno !== null) {
                res.wallet = true;
                res.wallet_type = type || 'wallet unknown';
                res.seqno = seqno;
                const ds = data.beginParse();
                if (type === 'wallet v4 r2') {
                    ds.loadUint(32);
                    res.wallet_id = ds.loadUint(32);
                } else if (type === 'wallet v5 r1') {
                    ds.loadBit();
                    ds.loadUint(32);
                    res.wallet_id = ds.loadInt(32);
                }
            }
        }
        return res;
    },

    async getAddressInformation(q) {
        tick();
        const address = parseAddress(q.address);
        const { contract, accountState, code, data } = await contractState(address);
        return {
            '@type': 'raw.fullAccountState',
            balance: contract.balance.toString(),
            extra_currencies: [],
            code: code ? code.toBoc().toString('base64') : '',
            data: data ? data.toBoc().toString('base64') : '',
            last_transaction_id: lastTransactionId(contract),
            frozen_hash: '',
            sync_utime: nowSec(),
            state: accountState,
        };
    },

    async runGetMethod(_q, body) {
        tick();
        const address = parseAddress(body.address);
        const { contract, accountState } = await contractState(address);
        if (accountState !== 'active') {
            return { '@type': 'smc.runResult', gas_used: 0, stack: [], exit_code: -13 };
        }
        if (Array.isArray(body.stack) && body.stack.length > 0) {
            throw new ApiError(400, 'this peer runs get methods without arguments only');
        }
        try {
            const res = await contract.get(body.method);
            const stack = res.stack.map((item) =>
                item.type === 'int' ? ['num', '0x' + item.value.toString(16)] : [item.type, {}],
            );
            return { '@type': 'smc.runResult', gas_used: Number(res.gasUsed), stack, exit_code: res.exitCode };
        } catch (e) {
            return { '@type': 'smc.runResult', gas_used: 0, stack: [], exit_code: e.exitCode ?? 11 };
        }
    },

    async sendBoc(_q, body) {
        await sendBoc(body);
        return { '@type': 'ok', '@extra': `${Date.now()}:0:0` };
    },

    async sendBocReturnHash(_q, body) {
        const cell = await sendBoc(body);
        return {
            '@type': 'raw.extMessageInfo',
            hash: cell.hash().toString('base64'),
            hash_norm: messageHashNorm(cell).toString('base64'),
        };
    },

    async getTransactions(q) {
        const address = parseAddress(q.address);
        const limit = Math.min(Math.max(parseInt(q.limit ?? '10', 10) || 10, 1), 100);
        const toLt = BigInt(q.to_lt || 0);
        let all = state.txs.get(address.toRawString()) || [];
        if (q.lt !== undefined && q.hash !== undefined) {
            const hash = Buffer.from(String(q.hash).length === 64 ? Buffer.from(q.hash, 'hex') : Buffer.from(q.hash, 'base64'));
            const start = all.findIndex(
                (tx) => tx.transaction_id.lt === String(q.lt) && Buffer.from(tx.transaction_id.hash, 'base64').equals(hash),
            );
            if (start < 0) throw new ApiError(500, 'LITE_SERVER_UNKNOWN: transaction not found');
            all = all.slice(start);
        }
        return all.filter((tx) => toLt === 0n || BigInt(tx.transaction_id.lt) > toLt).slice(0, limit);
    },

    async getMasterchainInfo() {
        return {
            '@type': 'blocks.masterchainInfo',
            last: { '@type': 'ton.blockIdExt', workchain: -1, shard: '-9223372036854775808', seqno: nowSec() },
        };
    },
};

const POST_METHODS = new Set(['runGetMethod', 'sendBoc', 'sendBocReturnHash']);

const testApi = {
    async fund(body) {
        tick();
        const address = parseAddress(body.address);
        const amount = BigInt(body.amount ?? 0);
        const result = await state.treasury.send({ to: address, value: amount, bounce: false });
        record(result.transactions);
        const contract = await state.chain.getContract(address);
        return { balance: contract.balance.toString() };
    },
    async advanceTime(body) {
        state.offset += Number(body.seconds ?? 0);
        return { now: nowSec() };
    },
    async time() {
        return { now: nowSec() };
    },
    async faults(body) {
        state.faults = {
            status: Number(body.status ?? 0),
            count: Number(body.count ?? 0),
            delayMs: Number(body.delay_ms ?? 0),
        };
        return state.faults;
    },
    async hold(body) {
        state.hold = Boolean(body.enabled);
        return { hold: state.hold, held: state.held.length };
    },
    async release() {
        const held = state.held;
        state.held = [];
        const results = [];
        for (const cell of held) {
            try {
                await execute(cell);
                results.push({ hash: cell.hash().toString('hex'), executed: true });
            } catch (e) {
                state.stats.dropped += 1;
                results.push({ hash: cell.hash().toString('hex'), executed: false, error: e.message });
            }
        }
        return { results };
    },
    async transfers(_body, q) {
        const wallet = parseAddress(q.wallet);
        return { transfers: state.transfers.get(wallet.toRawString()) || [] };
    },
    async stats() {
        return { ...state.stats, held: state.held.length, now: nowSec() };
    },
};

function send(res, status, value) {
    const text = JSON.stringify(value);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (!text) return resolve({});
            try {
                resolve(JSON.parse(text));
            } catch {
                reject(new ApiError(400, 'body is not JSON'));
            }
        });
        req.on('error', reject);
    });
}

async function handle(req, res) {
    const url = new URL(req.url, 'http://peer');
    const query = Object.fromEntries(url.searchParams);
    const path = url.pathname.replace(/\/+$/, '');

    if (path.startsWith('/_test/')) {
        const name = path.slice('/_test/'.length);
        const fn = testApi[name];
        if (!fn) return send(res, 404, { error: `no test endpoint ${name}` });
        try {
            const body = req.method === 'POST' ? await readBody(req) : {};
            return send(res, 200, await locked(() => fn(body, query)));
        } catch (e) {
            return send(res, e.code && e.code >= 400 ? e.code : 500, { error: e.message });
        }
    }

    const match = /^\/api\/v2\/([A-Za-z]+)$/.exec(path);
    const method = match && match[1];
    if (!method || !api[method]) {
        return send(res, 404, { ok: false, error: 'Not Found', code: 404 });
    }
    state.stats.requests += 1;
    state.stats.methods[method] = (state.stats.methods[method] || 0) + 1;

    if (state.apiKey) {
        const given = req.headers['x-api-key'] || query.api_key;
        if (given !== state.apiKey) {
            return send(res, 401, { ok: false, error: 'API key does not exist', code: 401 });
        }
    }
    if (state.faults.count > 0) {
        state.faults.count -= 1;
        state.stats.faulted += 1;
        state.stats.fault_times.push(Date.now());
        if (state.faults.delayMs > 0) {
            await new Promise((r) => setTimeout(r, state.faults.delayMs));
        } else {
            const status = state.faults.status || 500;
            const error = status === 429 ? 'Ratelimit exceed' : 'Internal Server Error';
            return send(res, status, { ok: false, error, code: status });
        }
    }
    const isPost = POST_METHODS.has(method);
    if (isPost !== (req.method === 'POST')) {
        return send(res, 405, { ok: false, error: 'Method Not Allowed', code: 405 });
    }
    try {
        const body = isPost ? await readBody(req) : {};
        const result = await locked(() => api[method](query, body));
        return send(res, 200, { ok: true, result });
    } catch (e) {
        const code = e instanceof ApiError ? e.code : 500;
        if (!(e instanceof ApiError)) process.stderr.write(`ton-peer: ${method}: ${e.stack || e}\n`);
        return send(res, code, { ok: false, error: e.message, code });
    }
}

async function main() {
    const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
    state.chain = await Blockchain.create();
    state.chain.verbosity = { print: false, blockchainLogs: false, vmLogs: 'none', debugLogs: false };
    tick();
    state.treasury = await state.chain.treasury('lessor-ton-peer', { balance: 1_000_000_000_000_000n });
    const server = http.createServer((req, res) => {
        handle(req, res).catch((e) => send(res, 500, { ok: false, error: String(e), code: 500 }));
    });
    server.keepAliveTimeout = 30_000;
    server.listen(port, '127.0.0.1', () => {
        process.stdout.write(`${server.address().port}\n`);
    });
    const stop = () => server.close(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    if (process.env.TON_PEER_EXIT_ON_STDIN_EOF === '1') {
        // Exit with the test that started us, even when it was killed without cleaning up.
        process.stdin.on('end', () => process.exit(0));
        process.stdin.resume();
    }
}

main().catch((e) => {
    process.stderr.write(`ton-peer: ${e.stack || e}\n`);
    process.exit(1);
});
