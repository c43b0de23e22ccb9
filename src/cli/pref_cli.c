/* Flags of the preference trainers (align dpo, align rm train) and their run. */
#include <stdio.h>
#include <string.h>

#include "align/dist_extra.h"
#include "args.h"
#include "pref_cli.h"

int cli_run_pref(const char *cmd, al_trainer_kind kind, int argc, char **argv, const char *usage)
{
    cli_config_args keep;
    int rc = cli_expand_config(cmd, &argc, &argv, &keep);
    if (rc)
        return rc;
    al_pref_train_opts o;
    al_pref_train_defaults(&o, kind);
    cli_args a;
    cli_args_init(&a, cmd, argc, argv);
    cli_train_fields fields = CLI_FINETUNE_FIELDS(o);
    if (kind == AL_TRAINER_RM) { /* reward models train in full */
        fields.lora = NULL;
        fields.lora_cfg = NULL;
    }
    const bool dpo = kind != AL_TRAINER_RM;
    const char *arg, *resume = NULL;
    int known;
    rc = 2;
    while ((arg = cli_next(&a)) && !a.error) {
        if (cli_flag(&a, arg, "-h", "--help")) {
            fputs(usage, stdout);
            rc = 0;
            goto out;
        } else if (cli_opt(&a, arg, NULL, "--resume")) {
            resume = a.value;
        } else if (dpo && cli_opt(&a, arg, NULL, "--loss")) {
            o.loss = a.value;
            o.trainer = !strcmp(a.value, "kto") ? AL_TRAINER_KTO : AL_TRAINER_DPO;
        } else if (dpo && cli_opt(&a, arg, NULL, "--loss-weights")) {
            o.loss_weights = a.value;
        } else if (dpo && cli_opt(&a, arg, NULL, "--beta")) {
            o.pref.beta = cli_float(&a, 1e-9, 1e9);
        } else if (dpo && cli_opt(&a, arg, NULL, "--label-smoothing")) {
            o.pref.label_smoothing = cli_float(&a, 0, 0.5);
        } else if (dpo && cli_opt(&a, arg, NULL, "--simpo-gamma")) {
            o.pref.simpo_gamma = cli_float(&a, -1e9, 1e9);
        } else if (dpo && cli_opt(&a, arg, NULL, "--rpo-alpha")) {
            o.pref.rpo_alpha = cli_float(&a, 0, 1e9);
        } else if (dpo && cli_flag(&a, arg, NULL, "--length-normalize")) {
            o.pref.length_normalize = true;
        } else if (dpo && cli_opt(&a, arg, NULL, "--desirable-weight")) {
            o.desirable_weight = cli_float(&a, 0, 1e9);
        } else if (dpo && cli_opt(&a, arg, NULL, "--undesirable-weight")) {
            o.undesirable_weight = cli_float(&a, 0, 1e9);
        } else if (dpo && cli_opt(&a, arg, NULL, "--ref-model")) {
            o.ref_model = a.value;
        } else if (dpo && cli_flag(&a, arg, NULL, "--precompute-ref")) {
            o.precompute_ref = true;
        } else if (!dpo && cli_opt(&a, arg, NULL, "--center-rewards")) {
            o.center_rewards = cli_float(&a, 0, 1e9);
        } else if ((known = cli_train_flag(&a, arg, &fields)) != 0) {
            if (known < 0)
                goto out;
        } else {
            rc = cli_unknown(&a, arg);
            goto out;
        }
    }
    if (a.error)
        goto out;
    if (resume) {
        rc = al_pref_resume(resume, &o) ? 1 : 0;
    } else if (!o.data || !o.model || !o.tokenizer || !o.out_dir) {
        fprintf(stderr, "%s: --data, -m MODEL, -z TOKENIZER and --out are required (see --help)\n", cmd);
        goto out;
    } else {
        rc = al_pref_train(&o) ? 1 : 0;
    }
    rc = al_dist_stop_on_error(rc, cmd);
    if (rc)
        fprintf(stderr, "%s: %s\n", cmd, al_errmsg());
out:
    cli_config_free(&keep);
    return rc;
}
