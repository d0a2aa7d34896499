/*
 * mgr_switchover.c — CAIRN SWITCHOVER: the edge of handover.c (the state
 * machine, and why it loses no write) on the manager's loop.
 *
 *   ctl ---- CAIRN SWITCHOVER <shard> [node] ------------------> mgr_switchover
 *     pl_switchover decides the target and the next configuration; then
 *     a primary that takes DRAIN (its heartbeats say "drain":true) and is
 *     healthy:  the reply is deferred (rserver_defer) and a job starts:
 *       primary <-- CAIRN DRAIN / DRAIN-STATUS / RESUME (rconn, every 2 ms)
 *       etcd    <-- compare-and-swap of the next configuration (mgr_shard_cas)
 *       target, old primary <-- CAIRN CONFIG <json> (no heartbeat to wait for)
 *       target  <-- CAIRN STATUS until it serves
 *     ctl <-- the next configuration plus "switchover":{...}, or -ERR
 *     otherwise (an older node, or a silent primary): the configuration is
 *     written at once, as before draining existed (safe — the new primary
 *     waits out the leases it granted — but writes in flight at the old
 *     primary may fail).
 *
 * One job per shard at a time; repair leaves a shard alone while its job
 * runs.  A job's memory goes once it has finished and every request it
 * sent has been answered (or failed) and its timer has closed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/reply.h"
#include "lib/resp.h"
#include "manager/handover.h"
#include "manager/mgr.h"
#include "net/rconn.h"

struct mgr_swo {
    mgr_t *m;
    ho_job job;
    uint32_t shard;
    int64_t mod_rev;   /* of the configuration the job started from */
    uint64_t token;    /* the deferred SWITCHOVER reply; 0 = none */
    rconn_t *pconn;    /* to the old primary */
    rconn_t *tconn;    /* to the target */
    uv_timer_t timer;
    int refs;          /* requests out, plus the timer until it has closed */
    bool finished;
    mgr_swo *next;
};

/* ---- lifetime ------------------------------------------------------------ */

static void swo_unref(mgr_swo *sw)
{
    if (--sw->refs > 0 || !sw->finished) return;
    if (sw->pconn) rconn_destroy(sw->pconn);
    if (sw->tconn) rconn_destroy(sw->tconn);
    cairn_free(sw);
}

static void on_timer_closed(uv_handle_t *h) { swo_unref(h->data); }

static void swo_unlink(mgr_swo *sw)
{
    for (mgr_swo **pp = &sw->m->swos; *pp; pp = &(*pp)->next)
        if (*pp == sw) {
            *pp = sw->next;
            return;
        }
}

/* ---- replies from the nodes ------------------------------------------------ */

/* A reply frame as a value, or NULL (no reply, or not RESP). */
static resp_value *parse_reply(const char *reply, size_t len)
{
    resp_value *v = NULL;
    size_t used;
    if (!reply || resp_read_value(reply, len, &v, &used) < 0) return NULL;
    return v;
}

static uint64_t jnum(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void on_drain_reply(void *arg, const char *reply, size_t len)
{
    mgr_swo *sw = arg;
    if (!sw->finished) {
        ho_status st = {.ok = false, .msg = "no answer (connection failed or timed out)"};
        char msg[300];
        resp_value *v = parse_reply(reply, len);
        json_t *j = NULL;
        if (v && v->type == RESP_ERROR) {
            snprintf(msg, sizeof(msg), "%.*s", (int)(v->len > 250 ? 250 : v->len), v->s);
            st.msg = msg;
        } else if (v && v->type == RESP_BULK && (j = json_loadb(v->s, v->len, 0, NULL)) &&
                   json_is_object(j)) {
            const char *state = json_string_value(json_object_get(j, "state"));
            st.ok = true;
            st.state = state && strcmp(state, "drained") == 0    ? REPL_DRAIN_DRAINED
                       : state && strcmp(state, "draining") == 0 ? REPL_DRAIN_DRAINING
                                                                 : REPL_DRAIN_NONE;
            st.version = jnum(j, "version");
            st.last_lsn = jnum(j, "last_lsn");
            st.commit_lsn = jnum(j, "commit_lsn");
            st.target_match = jnum(j, "target_match");
        } else if (v) {
            st.msg = "an answer that is not a drain status";
        }
        json_decref(j);
        resp_value_free(v);
        ho_drain_reply(&sw->job, &st, mgr_now());
    }
    swo_unref(sw);
}

static void on_probe_reply(void *arg, const char *reply, size_t len)
{
    mgr_swo *sw = arg;
    if (!sw->finished) {
        ho_probe pr = {.ok = false};
        resp_value *v = parse_reply(reply, len);
        json_t *j = NULL;
        if (v && v->type == RESP_BULK && (j = json_loadb(v->s, v->len, 0, NULL)) &&
            json_is_object(j)) {
            const char *role = json_string_value(json_object_get(j, "role"));
            pr.ok = true;
            pr.version = jnum(j, "version");
            pr.role = role && strcmp(role, "primary") == 0 ? REPL_PRIMARY : REPL_SECONDARY;
            pr.serving = json_is_true(json_object_get(j, "serving"));
        }
        json_decref(j);
        resp_value_free(v);
        ho_probe_reply(&sw->job, &pr, mgr_now());
    }
    swo_unref(sw);
}

static void on_done_reply(void *arg, const char *reply, size_t len)
{
    (void)reply;
    (void)len;
    swo_unref(arg);
}

/* ---- ho_io ------------------------------------------------------------------ */

/* Queue a request whose answer goes to cb.  If it cannot even be queued
 * (too many pending), no answer comes: the job's deadlines cover that
 * (handover.h: an answer must not re-enter the job from inside its call). */
static void send_to(mgr_swo *sw, rconn_t *c, rconn_reply_cb cb, size_t argc, const char **argv)
{
    if (c && rconn_send(c, argc, argv, NULL, cb, sw) == 0) sw->refs++;
}

static void io_drain(void *data, const ho_job *j)
{
    mgr_swo *sw = data;
    char shard[16], ver[24], ms[24], target[17];
    snprintf(shard, sizeof(shard), "%" PRIu32, j->cur.cfg.shard);
    snprintf(ver, sizeof(ver), "%" PRIu64, j->cur.cfg.version);
    snprintf(ms, sizeof(ms), "%" PRId64, j->par.timeout_ms);
    mjson_id_fmt(j->target, target);
    const char *argv[] = {"CAIRN", "DRAIN", shard, ver, ms, target};
    send_to(sw, sw->pconn, on_drain_reply, 6, argv);
}

static void io_drain_status(void *data, const ho_job *j)
{
    mgr_swo *sw = data;
    char shard[16], ver[24], target[17];
    snprintf(shard, sizeof(shard), "%" PRIu32, j->cur.cfg.shard);
    snprintf(ver, sizeof(ver), "%" PRIu64, j->cur.cfg.version);
    mjson_id_fmt(j->target, target);
    const char *argv[] = {"CAIRN", "DRAIN-STATUS", shard, ver, target};
    send_to(sw, sw->pconn, on_drain_reply, 5, argv);
}

static void io_resume(void *data, const ho_job *j)
{
    mgr_swo *sw = data;
    char shard[16], ver[24];
    snprintf(shard, sizeof(shard), "%" PRIu32, j->cur.cfg.shard);
    snprintf(ver, sizeof(ver), "%" PRIu64, j->cur.cfg.version);
    const char *argv[] = {"CAIRN", "RESUME", shard, ver};
    send_to(sw, sw->pconn, on_done_reply, 4, argv);
}

static int io_write(void *data, const ho_job *j, char *err, size_t errlen)
{
    mgr_swo *sw = data;
    mgr_t *m = sw->m;
    if (!mgr_acting(m)) {
        snprintf(err, errlen, "this manager is no longer the active one");
        return CAIRN_EAGAIN;
    }
    mstate_shard *row = mstate_shard_find(&m->st, sw->shard);
    if (!row || row->mod_rev != sw->mod_rev || row->s.cfg.version != j->cur.cfg.version)
        return 0; /* changed since the job started: this manager wrote it, or re-read it */
    const char *why = NULL;
    int rc = mgr_shard_cas(m, &j->next, sw->mod_rev, &why);
    if (rc < 0) snprintf(err, errlen, "%s", why ? why : "?");
    if (rc == 1) {
        char note[96];
        snprintf(note, sizeof(note), "switchover, the primary drained at LSN %" PRIu64,
                 j->last.last_lsn);
        mgr_log_change(&j->cur, &j->next, note);
    }
    return rc;
}

static void io_push(void *data, const ho_job *j)
{
    mgr_swo *sw = data;
    cairn_buf b;
    buf_init(&b);
    json_t *cfg = mstate_config_json(&sw->m->st, &j->next);
    mjson_append(&b, cfg);
    json_decref(cfg);
    buf_append(&b, "", 1); /* NUL */
    const char *argv[] = {"CAIRN", "CONFIG", b.data};
    send_to(sw, sw->tconn, on_done_reply, 3, argv);
    send_to(sw, sw->pconn, on_done_reply, 3, argv);
    buf_close(&b);
}

static void io_probe(void *data, const ho_job *j)
{
    (void)j;
    mgr_swo *sw = data;
    const char *argv[] = {"CAIRN", "STATUS"};
    send_to(sw, sw->tconn, on_probe_reply, 2, argv);
}

/* The SWITCHOVER reply: the new configuration plus what happened, or an
 * error. */
static void io_finish(void *data, const ho_job *j)
{
    mgr_swo *sw = data;
    mgr_t *m = sw->m;
    int64_t now = mgr_now(), paused = ho_paused_ms(j, now);
    cairn_buf out;
    buf_init(&out);
    if (j->phase == HO_DONE) {
        log_notice("switchover of shard %" PRIu32 " to %016" PRIx64 " done: no writes for %" PRId64
                   " ms%s",
                   sw->shard, j->target, paused,
                   j->served_at ? "" : " (the new primary does not serve yet)");
        json_t *r = mstate_config_json(&m->st, &j->next);
        json_t *so = json_object();
        char id[17];
        mjson_id_fmt(j->primary, id);
        json_object_set_new(so, "from", json_string(id));
        mjson_id_fmt(j->target, id);
        json_object_set_new(so, "to", json_string(id));
        json_object_set_new(so, "drained", json_true());
        json_object_set_new(so, "drained_lsn", json_integer((json_int_t)j->last.last_lsn));
        json_object_set_new(so, "paused_ms", json_integer(paused));
        json_object_set_new(so, "serving", json_boolean(j->served_at != 0));
        json_object_set_new(r, "switchover", so);
        cairn_buf b;
        buf_init(&b);
        mjson_append(&b, r);
        json_decref(r);
        reply_bulk(&out, b.data, b.len);
        buf_close(&b);
    } else {
        log_warn("switchover of shard %" PRIu32 " to %016" PRIx64 " abandoned after %" PRId64
                 " ms: %s",
                 sw->shard, j->target, now - j->started, j->why);
        reply_errorf(&out, "ERR switchover of shard %" PRIu32 " abandoned: %s%s", sw->shard, j->why,
                     j->outcome_unknown ? "" : "; the primary serves again");
    }
    if (sw->token && m->srv) rserver_complete(m->srv, sw->token, out.data, out.len);
    buf_close(&out);
    sw->finished = true;
    swo_unlink(sw);
    uv_timer_stop(&sw->timer);
    uv_close((uv_handle_t *)&sw->timer, on_timer_closed);
}

static void on_tick(uv_timer_t *t)
{
    mgr_swo *sw = t->data;
    if (sw->finished) return;
    if (!mgr_acting(sw->m)) {
        ho_abort(&sw->job, "this manager is no longer the active one", mgr_now());
        return;
    }
    ho_tick(&sw->job, mgr_now());
}

/* ---- entry points ---------------------------------------------------------- */

bool mgr_switchover_busy(const mgr_t *m, uint32_t shard)
{
    for (const mgr_swo *sw = m->swos; sw; sw = sw->next)
        if (sw->shard == shard) return true;
    return false;
}

static rconn_t *node_conn(mgr_t *m, uint64_t id)
{
    mstate_node *n = mstate_node_find(&m->st, id);
    if (!n || !n->info.addr[0]) return NULL;
    rconn_opts o = {.connect_timeout_ms = 300, .reply_timeout_ms = 1000};
    return rconn_create(m->loop, n->info.addr, &o);
}

bool mgr_switchover_start(mgr_t *m, const mstate_shard *row, const pl_shard *next)
{
    mstate_node *p = mstate_node_find(&m->st, row->s.cfg.primary);
    int64_t now = mgr_now();
    if (!p || !p->can_drain || !mstate_node_healthy(p, now)) return false;
    rconn_t *pconn = node_conn(m, row->s.cfg.primary);
    if (!pconn) return false;
    mgr_swo *sw = cairn_calloc(1, sizeof(*sw));
    sw->m = m;
    sw->shard = row->s.cfg.shard;
    sw->mod_rev = row->mod_rev;
    sw->pconn = pconn;
    sw->tconn = node_conn(m, next->cfg.primary); /* NULL: no probe answers; confirm_ms ends it */
    sw->token = rserver_defer(m->srv);
    sw->refs = 1; /* the timer */
    uv_timer_init(m->loop, &sw->timer);
    sw->timer.data = sw;
    sw->next = m->swos;
    m->swos = sw;
    log_notice("switchover of shard %" PRIu32 " (configuration %" PRIu64 "): %016" PRIx64
               " hands over to %016" PRIx64 " (drain within %lld ms)",
               sw->shard, row->s.cfg.version, row->s.cfg.primary, next->cfg.primary,
               (long long)m->cfg.switchover_timeout);
    ho_params par;
    ho_params_init(&par, m->cfg.switchover_timeout);
    ho_io io = {.data = sw, .drain = io_drain, .drain_status = io_drain_status,
                .resume = io_resume, .write = io_write, .push = io_push, .probe = io_probe,
                .finish = io_finish};
    pl_shard cur = row->s; /* the row may move while the job runs */
    uv_timer_start(&sw->timer, on_tick, (uint64_t)par.poll_ms, (uint64_t)par.poll_ms);
    ho_start(&sw->job, &par, &io, &cur, next, now);
    return true;
}

void mgr_switchover_stop_all(mgr_t *m)
{
    while (m->swos) {
        mgr_swo *sw = m->swos;
        sw->refs++; /* held while its connections go */
        ho_abort(&sw->job, "the manager is stopping", mgr_now()); /* unlinks it */
        /* The loop ends: a RESUME just queued may not leave (the primary
         * then resumes at its own deadline).  Pending requests fail now. */
        rconn_t *p = sw->pconn, *t = sw->tconn;
        sw->pconn = sw->tconn = NULL;
        if (p) rconn_destroy(p);
        if (t) rconn_destroy(t);
        swo_unref(sw);
    }
}
