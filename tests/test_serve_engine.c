/* The server's decoding engine on stories260K:
 * - jobs submitted together (more than the slots, so they join as others leave) produce
 *   exactly the tokens al_generate produces for each alone, with the same sampler;
 * - jobs submitted from several threads at once produce the same tokens again;
 * - a cancelled job ends as cancelled, and stopping the engine wakes every waiter. */
#include <pthread.h>

#include "../src/serve/engine.h"
#include "align/model.h"
#include "align/tokenizer.h"
#include "test.h"

enum { N_JOBS = 11, SLOTS = 4 };

typedef struct case_ {
    al_ints prompt;
    int max_new;
    al_sampler_opts so;
    al_ints alone;  /* al_generate's tokens */
    al_ints served; /* the engine's */
} case_;

static const int stop_ids[] = {1, 2}; /* BOS and EOS of tok512 end a story */

static void expected(const al_model *m, case_ *c)
{
    al_gen_opts go = {.max_new_tokens = c->max_new, .sampling = c->so, .stop_ids = stop_ids, .n_stop_ids = 2};
    al_gen_result res = {0};
    CHECK_OK(al_generate(m, NULL, &c->prompt, 1, &go, &res, NULL, NULL));
    for (int i = 0; i < res.ids.n; i++)
        al_ints_push(&c->alone, res.ids.v[i]);
    al_gen_results_free(&res, 1);
}

static void collect(srv_job *j, al_ints *out, srv_finish *fin)
{
    int buf[16];
    *fin = SRV_RUNNING;
    while (*fin == SRV_RUNNING) {
        int n = srv_job_wait(j, out->n, buf, 16, fin, -1);
        for (int i = 0; i < n; i++)
            al_ints_push(out, buf[i]);
    }
}

static srv_job *submit(srv_engine *e, const case_ *c)
{
    srv_job_opts o = {.prompt = c->prompt.v, .n_prompt = c->prompt.n, .max_new_tokens = c->max_new,
                      .sampling = c->so, .stop_ids = stop_ids, .n_stop_ids = 2};
    srv_job *j = srv_submit(e, &o);
    CHECKF(j != NULL, "%s", al_errmsg());
    return j;
}

typedef struct thread_arg {
    srv_engine *e;
    case_ *c;
} thread_arg;

static void *client(void *p)
{
    thread_arg *a = p;
    srv_job *j = submit(a->e, a->c);
    srv_finish fin;
    if (j) {
        collect(j, &a->c->served, &fin);
        srv_job_release(j);
    }
    return NULL;
}

static void make_cases(const al_tokenizer *tok, case_ *cs)
{
    static const char *texts[] = {"Once upon a time", "The dog", "Lily and Ben went to the park", "One day",
                                  "The sun was"};
    for (int i = 0; i < N_JOBS; i++) {
        case_ *c = &cs[i];
        memset(c, 0, sizeof *c);
        const char *t = texts[i % 5];
        CHECK_OK(al_tokenizer_encode(tok, t, strlen(t), true, false, &c->prompt));
        c->max_new = 5 + 13 * i % 60;
        c->so = al_sampler_defaults();
        c->so.temperature = i % 3 == 0 ? 0.0f : 0.9f;
        c->so.top_p = i % 2 ? 0.9f : 1.0f;
        c->so.seed = 100 + (uint64_t)i;
        c->so.repeat_penalty = i % 4 == 1 ? 1.1f : 1.0f;
    }
}

static void test_batched_equals_alone(const al_model *m, case_ *cs)
{
    srv_engine *e = srv_engine_start(m, SLOTS, AL_KV_F32, AL_W_F32);
    CHECK(e != NULL);
    if (!e)
        return;
    srv_job *jobs[N_JOBS];
    for (int i = 0; i < N_JOBS; i++)
        jobs[i] = submit(e, &cs[i]);
    for (int i = 0; i < N_JOBS; i++) {
        srv_finish fin;
        al_ints got = {0};
        if (!jobs[i])
            continue;
        collect(jobs[i], &got, &fin);
        CHECKF(fin == SRV_STOP || fin == SRV_LENGTH, "job %d finished %d", i, (int)fin);
        bool same = got.n == cs[i].alone.n && !memcmp(got.v, cs[i].alone.v, sizeof(int) * (size_t)got.n);
        CHECKF(same, "job %d: %d tokens batched, %d alone", i, got.n, cs[i].alone.n);
        srv_job_release(jobs[i]);
        al_ints_free(&got);
    }
    srv_engine_stats st;
    srv_engine_get_stats(e, &st);
    long long want = 0;
    for (int i = 0; i < N_JOBS; i++)
        want += cs[i].alone.n;
    CHECKF(st.tokens == want, "engine counted %lld tokens, the jobs hold %lld", st.tokens, want);
    CHECK(st.live == 0 && st.queued == 0);
    srv_engine_free(e);
}

static void test_threads(const al_model *m, case_ *cs)
{
    srv_engine *e = srv_engine_start(m, SLOTS, AL_KV_F32, AL_W_F32);
    CHECK(e != NULL);
    if (!e)
        return;
    pthread_t th[N_JOBS];
    thread_arg args[N_JOBS];
    for (int i = 0; i < N_JOBS; i++) {
        args[i] = (thread_arg){e, &cs[i]};
        pthread_create(&th[i], NULL, client, &args[i]);
    }
    for (int i = 0; i < N_JOBS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N_JOBS; i++) {
        bool same = cs[i].served.n == cs[i].alone.n &&
                    !memcmp(cs[i].served.v, cs[i].alone.v, sizeof(int) * (size_t)cs[i].alone.n);
        CHECKF(same, "job %d from its own thread: %d tokens, %d alone", i, cs[i].served.n, cs[i].alone.n);
    }
    srv_engine_free(e);
}

static void test_cancel_and_stop(const al_model *m, const case_ *c)
{
    srv_engine *e = srv_engine_start(m, 1, AL_KV_F32, AL_W_F32);
    CHECK(e != NULL);
    if (!e)
        return;
    case_ longer = *c;
    longer.max_new = 400;
    longer.so.temperature = 1.0f;
    longer.so.seed = 7;
    srv_job *a = submit(e, &longer), *b = submit(e, &longer); /* b waits: one slot */
    int buf[8];
    srv_finish fin;
    CHECK(srv_job_wait(a, 0, buf, 8, &fin, 5000) > 0); /* a is decoding */
    srv_job_cancel(b); /* dropped from the queue */
    al_ints got = {0};
    collect(b, &got, &fin);
    CHECK(fin == SRV_CANCELLED);
    al_ints_free(&got);
    srv_job_cancel(a);
    collect(a, &got, &fin);
    CHECK(fin == SRV_CANCELLED || fin == SRV_STOP);
    al_ints_free(&got);
    srv_job_release(a);
    srv_job_release(b);
    /* a job the engine holds when it stops ends as cancelled, and its waiter wakes */
    srv_job *c2 = submit(e, &longer);
    CHECK(c2 && srv_job_wait(c2, 0, buf, 8, &fin, 5000) > 0);
    srv_engine_stop(e);
    collect(c2, &got, &fin);
    CHECK(fin == SRV_CANCELLED || fin == SRV_STOP || fin == SRV_LENGTH);
    al_ints_free(&got);
    srv_job_release(c2);
    /* submitting after the stop fails cleanly */
    srv_job_opts o = {.prompt = c->prompt.v, .n_prompt = c->prompt.n, .max_new_tokens = 3, .sampling = c->so};
    CHECK(srv_submit(e, &o) == NULL);
    srv_engine_free(e);
}

static void test_bad_prompts(const al_model *m)
{
    srv_engine *e = srv_engine_start(m, 2, AL_KV_F32, AL_W_F32);
    CHECK(e != NULL);
    if (!e)
        return;
    int ids[600];
    for (int i = 0; i < 600; i++)
        ids[i] = 5;
    srv_job_opts o = {.prompt = ids, .n_prompt = 600, .max_new_tokens = 3, .sampling = al_sampler_defaults()};
    CHECK(srv_submit(e, &o) == NULL && strstr(al_errmsg(), "positions"));
    o.n_prompt = 0;
    CHECK(srv_submit(e, &o) == NULL);
    ids[0] = 100000;
    o.n_prompt = 3;
    CHECK(srv_submit(e, &o) == NULL && strstr(al_errmsg(), "vocabulary"));
    srv_engine_free(e);
}

int main(void)
{
    al_model m;
    al_tokenizer *tok = NULL;
    CHECK_OK(al_model_load(&m, shared_path("models/stories260K/stories260K.bin")));
    CHECK_OK(al_tokenizer_load(&tok, shared_path("models/stories260K/tok512.bin")));
    case_ cs[N_JOBS];
    make_cases(tok, cs);
    for (int i = 0; i < N_JOBS; i++)
        expected(&m, &cs[i]);
    test_batched_equals_alone(&m, cs);
    test_threads(&m, cs);
    test_cancel_and_stop(&m, &cs[0]);
    test_bad_prompts(&m);
    for (int i = 0; i < N_JOBS; i++) {
        al_ints_free(&cs[i].prompt);
        al_ints_free(&cs[i].alone);
        al_ints_free(&cs[i].served);
    }
    al_tokenizer_free(tok);
    al_model_free(&m);
    return test_report();
}
