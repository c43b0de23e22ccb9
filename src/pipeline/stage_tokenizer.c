/* Stage tokenizer: byte-level BPE trained on the world's corpus. */
#include <string.h>

#include "align/tokenizer.h"
#include "internal.h"

static void tok_progress(void *ctx, const char *stage, long done, long total)
{
    al_progress *bar = ctx;
    if (!bar->label) /* the merges are what takes time: one bar for them */
        al_progress_begin(bar, "tokenizer merges", total);
    if (!strcmp(stage, "merge"))
        al_progress_update(bar, done, NULL);
}

int pipeline_stage_tokenizer(al_pipeline *p, json_t *fig)
{
    pipeline_paths ps = {0};
    const char *corpus = pipeline_at(p, &ps, WORLD "/corpus.txt"), *out = pipeline_at(p, &ps, TOKENIZER),
               *dir = pipeline_at(p, &ps, "tokenizer");
    al_buf text = {0};
    al_tokenizer *t = NULL;
    al_progress bar = {0};
    /* <|endoftext|> is the corpus's document separator: one id, BOS and EOS alike */
    const char *specials[] = {"<|endoftext|>"};
    al_bpe_train_opts o = {p->preset->vocab_size, specials, 1, p->log ? tok_progress : NULL, &bar};
    const char *texts[1];
    size_t lens[1];
    int rc = out && dir ? al_read_file(corpus, &text) : -1;
    texts[0] = text.data, lens[0] = text.len;
    if (rc == 0)
        rc = al_bpe_train(&t, texts, lens, 1, &o);
    if (bar.label)
        al_progress_end(&bar);
    if (rc == 0)
        rc = al_mkdir_p(dir) || al_tokenizer_save_json(t, out) ? -1 : 0;
    if (rc == 0) {
        json_object_set_new(fig, "vocab_size", json_integer(al_tokenizer_vocab_size(t)));
        json_object_set_new(fig, "merges", json_integer(al_tokenizer_n_merges(t)));
    }
    al_tokenizer_free(t);
    al_buf_free(&text);
    pipeline_paths_free(&ps);
    return rc;
}
