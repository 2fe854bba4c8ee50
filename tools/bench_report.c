/* tools/bench_report: a `mitten bench` run's figures as a table or as JSON, each against the machine's limits. */
#include <stdio.h>

#include "base/json.h"
#include "bench_int.h"
#include "tensor/cpu/cpu.h"

#define GiB (1024.0 * 1024.0 * 1024.0)


/* What bf16 weights can be multiplied at: the bf16 dot product, or f32 FMA on widened weights (the GEMM's way on
 * every CPU; on a CPU whose vdpbf16ps chains measure slower than its f32 FMA, the f32 figure is the honest peak). */
static double compute_peak(const bench *b) { return MT_MAX(b->rf.bf16_gflops, b->rf.f32_gflops); }

static double share(const bench *b, const figure *f) {
    return f->mem_bound ? f->bytes / f->seconds / 1e9 / b->rf.read_gbs : f->flop / f->seconds / 1e9 / compute_peak(b);
}

static double weights_bytes(const bench *b) { return (double)mt_safetensors_total_bytes(b->m->st); }

static void format_rate(char *out, size_t cap, double rate, const char *unit) {
    snprintf(out, cap, rate >= 100 ? "%.0f %s/s" : "%.3g %s/s", rate, unit);
}

void mt_bench_print_table(const bench *b, const char *commit, const char *cpu, const char *date, const char *load) {
    const mt_roofline *r = &b->rf;
    double budget = weights_bytes(b) + b->kv_bytes + GiB, peak = 0;
    printf("mitten bench  commit %s  %s\n", commit, date);
    char paths[160];
    printf("machine  %s, %d threads, load average before the run %s\n", cpu, r->threads, load);
    printf("kernels  %s\n", mt_cpu_paths(paths, sizeof paths));
    printf("model    %s (%s, %.2f B parameters, %.2f GiB of weights)\n", b->m->source,
           mt_dtype_name(b->m->desc.weight_dtype),
           (double)(b->m->desc.params_vision + b->m->desc.params_projector + b->m->desc.params_language) / 1e9,
           weights_bytes(b) / GiB);
    printf("roofline f32 FMA %.1f GFLOP/s, bf16 %.1f GFLOP/s, read %.1f GB/s (best of 6: before and after the cases)\n",
           r->f32_gflops, r->bf16_gflops, r->read_gbs);
    printf("%s\n\n", !r->bf16_native ? "         no bf16 dot product on this CPU: \"bf16 peak\" is the f32 FMA figure"
                       : r->bf16_gflops < r->f32_gflops
                           ? "         vdpbf16ps chains slower than f32 FMA here: \"bf16 peak\" is the f32 FMA figure"
                           : "         bf16 peak: vdpbf16ps chains");
    printf("%-46s %10s %13s %8s %6s %15s %6s %9s %4s\n", "case", "ms", "rate", "GFLOP/s", "GB/s", "share", "target",
           "peak RSS", "cpu");
    for (int i = 0; i < b->n_fig; i++) {
        const figure *f = &b->fig[i];
        char rate[32], gbs[16] = "-", tgt[16] = "-", rss[16] = "-", sh[32];
        format_rate(rate, sizeof rate, f->count / f->seconds, f->unit);
        if (f->bytes > 0) snprintf(gbs, sizeof gbs, "%.1f", f->bytes / f->seconds / 1e9);
        double s = share(b, f);
        if (f->flop > 0 || f->bytes > 0) snprintf(sh, sizeof sh, "%5.1f%% %s", 100 * s, f->mem_bound ? "read bw" : "bf16 pk");
        else snprintf(sh, sizeof sh, "-");
        if (f->target > 0) snprintf(tgt, sizeof tgt, "%s%.0f%%", s >= f->target ? ">=" : "< ", 100 * f->target);
        if (f->target_seconds > 0)
            snprintf(tgt, sizeof tgt, "%s%gs", f->seconds <= f->target_seconds ? "<=" : "> ", f->target_seconds);
        if (f->peak_rss > 0) snprintf(rss, sizeof rss, "%.2f GiB", f->peak_rss / GiB);
        if (!f->training && !f->peer) peak = MT_MAX(peak, f->peak_rss);
        char cpu_share[16] = "-";
        if (!f->peer) snprintf(cpu_share, sizeof cpu_share, "%.0f%%", 100 * f->cpu);
        printf("%-46s %10.2f %13s %8.1f %6s %15s %6s %9s %4s\n", f->name, f->seconds * 1e3, rate,
               f->flop / f->seconds / 1e9, gbs, sh, tgt, rss, cpu_share);
    }
    printf("\ncpu: CPU time of mitten over wall time x threads; under 100%% means other processes shared the cores\n");
    printf("memory   peak RSS %.2f GiB (inference cases); budget = weights %.2f + KV cache %.3f + 1 GiB = %.2f GiB: "
           "%s\n", peak / GiB, weights_bytes(b) / GiB, b->kv_bytes / GiB, budget / GiB,
           peak <= budget ? "within" : "OVER");
}

void mt_bench_print_json(const bench *b, const char *commit, const char *cpu, const char *date, const char *load) {
    cJSON *o = cJSON_CreateObject(), *rf = cJSON_CreateObject(), *res = cJSON_CreateArray();
    double peak = 0;
    cJSON_AddStringToObject(o, "commit", commit);
    cJSON_AddStringToObject(o, "date", date);
    cJSON_AddStringToObject(o, "cpu", cpu);
    cJSON_AddStringToObject(o, "load_average", load);
    cJSON_AddNumberToObject(o, "threads", b->rf.threads);
    char paths[160];
    cJSON_AddStringToObject(o, "kernel_paths", mt_cpu_paths(paths, sizeof paths));
    cJSON_AddStringToObject(o, "model", b->m->source);
    cJSON_AddStringToObject(o, "weight_dtype", mt_dtype_name(b->m->desc.weight_dtype));
    cJSON_AddNumberToObject(o, "weights_bytes", weights_bytes(b));
    cJSON_AddStringToObject(rf, "isa", b->rf.isa);
    cJSON_AddNumberToObject(rf, "f32_gflops", b->rf.f32_gflops);
    cJSON_AddNumberToObject(rf, "bf16_gflops", b->rf.bf16_gflops);
    cJSON_AddBoolToObject(rf, "bf16_native", b->rf.bf16_native);
    cJSON_AddNumberToObject(rf, "compute_gflops", compute_peak(b));
    cJSON_AddNumberToObject(rf, "read_gbs", b->rf.read_gbs);
    cJSON_AddItemToObject(o, "roofline", rf);
    for (int i = 0; i < b->n_fig; i++) {
        const figure *f = &b->fig[i];
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "case", f->name);
        cJSON_AddNumberToObject(r, "seconds", f->seconds);
        cJSON_AddNumberToObject(r, "per_second", f->count / f->seconds);
        cJSON_AddStringToObject(r, "unit", f->unit);
        cJSON_AddNumberToObject(r, "gflops", f->flop / f->seconds / 1e9);
        if (f->bytes > 0) cJSON_AddNumberToObject(r, "gbs", f->bytes / f->seconds / 1e9);
        cJSON_AddNumberToObject(r, "share", share(b, f));
        cJSON_AddStringToObject(r, "share_of", f->mem_bound ? "read_gbs" : "compute_gflops");
        if (f->target > 0) cJSON_AddNumberToObject(r, "target", f->target);
        if (f->target_seconds > 0) cJSON_AddNumberToObject(r, "target_seconds", f->target_seconds);
        if (f->peak_rss > 0) cJSON_AddNumberToObject(r, "peak_rss_bytes", f->peak_rss);
        if (f->peer) cJSON_AddBoolToObject(r, "peer", true);
        else cJSON_AddNumberToObject(r, "cpu_share", f->cpu);
        if (f->training) cJSON_AddBoolToObject(r, "training", true);
        else if (!f->peer) peak = MT_MAX(peak, f->peak_rss);
        cJSON_AddItemToArray(res, r);
    }
    cJSON_AddItemToObject(o, "results", res);
    cJSON *mem = cJSON_AddObjectToObject(o, "memory");
    cJSON_AddNumberToObject(mem, "peak_rss_bytes", peak);
    cJSON_AddNumberToObject(mem, "kv_cache_bytes", b->kv_bytes);
    cJSON_AddNumberToObject(mem, "budget_bytes", weights_bytes(b) + b->kv_bytes + GiB);
    char *text = mt_json_print(o, true);
    if (text) puts(text);
    mt_free(text);
    cJSON_Delete(o);
}
