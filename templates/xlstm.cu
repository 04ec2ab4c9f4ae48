// ---- xlstm.cu: towers.0, the xLSTM layer (sLSTM block, mLSTM block, LayerNorm) -------------
// phase 0 (CTA per entry): xt = RMSNorm(u; norm1); xn = LayerNorm(xt); xc = silu(conv(xn)),
//          as the gates' inputs by sLSTM head: xch = [xc | hprev], xnh = [xn | hprev]
// phase 1: sLSTM gates, 8 BlockLinears (input and state parts) per row, as 2 projections of
//          two matrices over one input, a gate's input and state matrices one row over
//          [x | hprev] (they share rows in the layout): i, f of xch (sums in sg), then z, o of
//          xnh, whose epilogue runs the cell update; sh = new hidden state             H rows
// phase 2 (CTA per entry): commit hprev = sh; so = GroupNorm(sh) + xt; xn2 = LayerNorm(so)
// phase 3: xm = x_proj xn2 (xc2 = silu(conv xm)), xg = gate_proj xn2, stacked   2E rows
// phase 4: q = q_proj xc2, k = k_proj xc2, v = v_proj xm (BlockLinears of 4)     3E rows
// phase 5: ip, fp = igate_proj, fgate_proj of [q, k, v]: one warp task per (gate, head,
//          GATE_COLS columns), partial sums added in a fixed order by phase 6     2 NH x GC
// phase 6: per (entry, head n, STATE_ROWS rows, 128 columns): gates, C update, num = q C
//          as one partial sum per STATE_ROWS rows, added up by the head's last task to
//          finish, which updates n and m, divides by max(|q.n|, e^-m) and writes
//          mo = (GroupNorm(sh2) + skip * xc2) * silu(xg) for the head
// phase 7: ym = proj_down(mo) + so                                                H rows
// phase 8 (CTA per entry): u += LayerNorm(ym; final_norm); commits the count of logged steps
struct XLSTM {
    using Lk = L_xlstm;
    static constexpr int TOWER = 0;
    static constexpr int PHASES = 9;
    using MlTask = StateTask<XL_DM, XL_NH>; // phase 6's tasks over C
    static constexpr int GC = (3 * XL_E + GATE_COLS - 1) / GATE_COLS;    // column chunks: partial sums of ip, fp
    static constexpr int GATE_ENTRIES = 8;                                // batch entries per gate task

    __device__ static int units(int phase, int nb)
    {
        switch (phase) {
        case 0: case 2: case 8: return nb; // one CTA per entry
        case 1: return H;
        case 3: return 2 * XL_E;
        case 4: return 3 * XL_E;
        case 5: return 2 * XL_NH * GC * ((nb + GATE_ENTRIES - 1) / GATE_ENTRIES);
        case 6: return MlTask::count(nb);
        case 7: return H;
        }
        return 0;
    }

    __device__ static long cost(int phase, int nb)
    {
        switch (phase) {
        case 0: return ENTRY_COST_INPUT;
        case 2: return ENTRY_COST_SLSTM_OUTPUT;
        case 8: return ENTRY_COST_OUTPUT;
        case 1: return row_cost(4, 2 * XL_BS, nb);
        case 3: return row_cost(1, H, nb);
        case 4: // narrower than a chunk (block_rows): also each entry's input block and output, from L2
            return row_cost(1, XL_QB, nb) + (XL_QB < 128 ? state_cost((XL_QB + 1) * 4L * nb) : 0);
        case 5: return row_cost(1, GATE_COLS, 4 * GATE_ENTRIES); // inputs from L2 for each entry
        case 6: // C read and written, and a fixed part weighed as 3 head vectors from L2
            return state_cost(2L * STATE_ROWS * 128 * 4 + 3L * XL_DM * 4);
        }
        return row_cost(1, XL_E, nb);
    }

    // A CTA-per-entry phase: the entry's vectors of H read into registers once, then a few
    // CTA-wide reductions and the writes: 8-20 us of a CTA per entry at full size. Weighed
    // against the projections that share the stage, by tower in the per-stage trace at batch
    // 8 and 50 (notes/gpu.md, runs 60-63; the lower costs of run 103 made batch 32 and 50
    // 2% slower).
    static constexpr long ENTRY_COST_INPUT = 4500000, ENTRY_COST_SLSTM_OUTPUT = 5000000,
                          ENTRY_COST_OUTPUT = 3250000;

    __device__ static void sl_input(const Params &p, int l, int b)
    {
        const float *w1 = wvec(p, wb<Lk>(l, Lk::b_norm1_weight));
        const float *wl = wvec(p, wb<Lk>(l, Lk::b_layer_slstm_norm_weight));
        const float *cw = wvec(p, wb<Lk>(l, Lk::b_layer_slstm_conv1d_conv_weight));
        const float *cb = wvec(p, wb<Lk>(l, Lk::b_layer_slstm_conv1d_conv_bias));
        const float *hprev = st<Lk>(p, b, l, Lk::st_s_h);
        float *cs = st<Lk>(p, b, l, Lk::st_s_conv), *xnh = sc(p, Lk::sc_xnh, b), *xch = sc(p, Lk::sc_xch, b);
        float x[HPT], h[HPT], nl[HPT];
        h_load(x, sc(p, Lk::sc_u, b));
        h_load(h, hprev);
        h_load_w(nl, wl);
        float s2 = 0.0f;
#pragma unroll
        for (int k = 0; k < HPT; k++) s2 += x[k] * x[k];
        const float rs = 1.0f / sqrtf(block_sum(s2) / H + EPS_BLOCK);
#pragma unroll
        for (int k = 0; k < HPT; k++)
            if (h_col(k) < H) x[k] = x[k] * rs * w1[h_col(k)];
        h_store(sc(p, Lk::sc_xt, b), x);
        float mean[1], rstd[1];
        h_group_stats(x, 1e-5f, mean, rstd);
#pragma unroll
        for (int k = 0; k < HPT; k++) {
            const int c = h_col(k);
            if (c >= H) continue;
            const float v = h_norm_value(x, k, mean, rstd) * nl[k];
            const int i = c / XL_BS * 2 * XL_BS + c % XL_BS; // [x | hprev] of c's head
            xnh[i] = v;
            xch[i] = siluf(conv_step<XL_K>(cw, cb, cs, c, v));
            xnh[i + XL_BS] = h[k];
            xch[i + XL_BS] = h[k];
        }
    }

    __device__ static void sl_output(const Params &p, int l, int b)
    {
        const float *gw = wvec(p, wb<Lk>(l, Lk::b_layer_slstm_group_norm_weight));
        const float *gb = wvec(p, wb<Lk>(l, Lk::b_layer_slstm_group_norm_bias));
        const float *wl = wvec(p, wb<Lk>(l, Lk::b_layer_mlstm_norm_weight));
        float sh[HPT], x[HPT], gnw[HPT], gnb[HPT], nl[HPT];
        h_load(sh, sc(p, Lk::sc_sh, b));
        h_load(x, sc(p, Lk::sc_xt, b));
        h_load_w(gnw, gw);
        h_load_w(gnb, gb);
        h_load_w(nl, wl);
        h_store(st<Lk>(p, b, l, Lk::st_s_h), sh); // commit hprev
        float mean[XL_NS], rstd[XL_NS]; // GroupNorm, one group per sLSTM head
        h_group_stats(sh, 1e-5f, mean, rstd);
#pragma unroll
        for (int k = 0; k < HPT; k++) x[k] += h_norm_value(sh, k, mean, rstd) * gnw[k] + gnb[k];
        h_store(sc(p, Lk::sc_so, b), x);
        float lm[1], lr[1];
        h_group_stats(x, 1e-5f, lm, lr);
        float *xn2 = sc(p, Lk::sc_xn2, b);
#pragma unroll
        for (int k = 0; k < HPT; k++)
            if (h_col(k) < H) xn2[h_col(k)] = h_norm_value(x, k, lm, lr) * nl[k];
    }

    // Weights of the input (g = 0) and forget (g = 1) gate projections, [NH][3E] each.
    __device__ static long gate_weight(int l, int g)
    {
        return wb<Lk>(l, g ? Lk::b_layer_mlstm_mlstm_cell_fgate_proj_weight : Lk::b_layer_mlstm_mlstm_cell_igate_proj_weight);
    }

    // Warp tasks t in [lo, hi) = (group of GATE_ENTRIES entries, gate g, head n, column chunk
    // c): the dot of the chunk's weights with [q, k, v] of each entry of the group into
    // ipf_part[entry][(g * NH + n) * GC + c]. The 8 gate rows are 3E long: split over
    // columns and entries they spread over many warps (a warp per row streamed them one
    // chunk after the other).
    __device__ static void gate_parts(const Params &p, int l, int lo, int hi)
    {
        constexpr int PER_LANE = GATE_COLS / 128; // float4 of a chunk per lane
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        for (int t = lo + warp; t < hi; t += WARPS) {
            const int part = t % (2 * XL_NH * GC), b0 = t / (2 * XL_NH * GC) * GATE_ENTRIES;
            const int row = part / GC, c0 = part % GC * GATE_COLS + lane * 4, c1 = min(c0 - lane * 4 + GATE_COLS, 3 * XL_E);
            const long w = gate_weight(l, row / XL_NH), r = (long)(row % XL_NH) * 3 * XL_E;
            float4 wv[PER_LANE];
#pragma unroll
            for (int i = 0; i < PER_LANE; i++)
                wv[i] = c0 + 128 * i < c1 ? unpack(ld_mat4(p, w, r + c0 + 128 * i)) : make_float4(0.f, 0.f, 0.f, 0.f);
            for (int b = b0; b < min(b0 + GATE_ENTRIES, p.nb); b++) {
                const float *x = sc(p, Lk::sc_qkv, b);
                float4 xv[PER_LANE];
#pragma unroll
                for (int i = 0; i < PER_LANE; i++)
                    xv[i] = c0 + 128 * i < c1 ? ld_act4(x + c0 + 128 * i) : make_float4(0.f, 0.f, 0.f, 0.f);
                float s = 0.0f;
#pragma unroll
                for (int i = 0; i < PER_LANE; i++)
                    s += (wv[i].x * xv[i].x + wv[i].y * xv[i].y) + (wv[i].z * xv[i].z + wv[i].w * xv[i].w);
                s = warp_sum(s);
                if (lane == 0) sc(p, Lk::sc_ipf_part, b)[part] = s;
            }
        }
    }

    // Gate g (0: input, 1: forget) of head n for entry b: bias + the GC partial sums in order.
    __device__ static float gate_sum(const Params &p, int l, int b, int g, int n)
    {
        const float *part = sc(p, Lk::sc_ipf_part, b) + (g * XL_NH + n) * GC;
        float s = wvec(p, wb<Lk>(l, g ? Lk::b_layer_mlstm_mlstm_cell_fgate_proj_bias
                                      : Lk::b_layer_mlstm_mlstm_cell_igate_proj_bias))[n];
        for (int c = 0; c < GC; c++) s += ld_act(part + c);
        return s;
    }

    // One warp per (entry, head, STATE_ROWS rows, 128 columns of C): a lane owns 4 columns.
    // A task writes its part of q C (numerators); the head's last task to finish adds them
    // and divides by max(|q . n_new|, e^-m_new) + 1e-6, computing n_new and m_new over the
    // head and writing them in place (every other task of the head has read the old ones).
    // A warp's tasks are a contiguous run (warp_tasks), the column chunk fastest: it takes the
    // gates once a head and the q, k rows once a row chunk.
    __device__ static void ml_cell(const Params &p, int l, int lo, int hi)
    {
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        float *qs = warp_vecs[warp][0], *ks = warp_vecs[warp][1];
        const float rs = sqrtf((float)XL_DM); // k is scaled by 1 / sqrt(head size)
        int first, end, done = 0;
        warp_tasks(lo, hi, first, end);
        auto c_rows = state_stream<MlTask, StateElem>(first, end, [&](int b) { return stm<Lk>(p, b, l, Lk::st_m_C); });
        float ig = 0.0f, fg = 0.0f, mnew = 0.0f; // the gates of the warp's head
        for (int t = first; t < end; t++) {
            const MlTask task(t);
            const int b = task.b, n = task.n, i0 = task.i0, j = task.col();
            const float *qkv = sc(p, Lk::sc_qkv, b);
            const float *q = qkv + n * XL_DM, *k = qkv + XL_E + n * XL_DM;
            if (MlTask::new_head(t, first)) {
                const float ip = gate_sum(p, l, b, 0, n), fp = gate_sum(p, l, b, 1, n);
                const float m = *(st<Lk>(p, b, l, Lk::st_m_m) + n);
                const float lf = logsigmoidf(fp);
                mnew = fmaxf(ip, m + lf);
                ig = expf(ip - mnew);
                fg = expf(lf + m - mnew);
            }
            task.fill_rows(t, first, [&](int i) {
                qs[i] = ld_act(q + i0 + i);
                ks[i] = ig * (ld_act(k + i0 + i) / rs); // C gains (ig * kk[a]) * v[b]
            });
            float *part = sc(p, Lk::sc_sh2_part, b) + n * XL_DM;
            const float4 v = j < XL_DM ? ld_act4(qkv + 2 * XL_E + n * XL_DM + j) : make_float4(0.f, 0.f, 0.f, 0.f);
            const float4 num =
                c_rows.update(t, fg, ks, v, qs, state_log<Lk>(p, b, l, Lk::st_m_log, Lk::st_m_logged, XL_LOG_ENTRY));
            if (j < XL_DM) *(float4 *)(part + task.rc * XL_E + j) = num;
            if (!last_task_of_head((unsigned *)sc(p, Lk::sc_sh2_count, b) + n, MlTask::PER_HEAD, t, end, done))
                continue;
            float *nv = st<Lk>(p, b, l, Lk::st_m_nv) + n * XL_DM;
            float qn = 0.0f; // q . n_new over the head, a float4 per lane at a time
#pragma unroll 4
            for (int a = lane * 4; a < XL_DM; a += 128) {
                const float4 n4 = *(const float4 *)(nv + a), k4 = ld_act4(k + a), q4 = ld_act4(q + a);
                const float4 nn = make_float4(fg * n4.x + ig * (k4.x / rs), fg * n4.y + ig * (k4.y / rs),
                                              fg * n4.z + ig * (k4.z / rs), fg * n4.w + ig * (k4.w / rs));
                qn += (q4.x * nn.x + q4.y * nn.y) + (q4.z * nn.z + q4.w * nn.w);
                *(float4 *)(nv + a) = nn;
            }
            qn = warp_sum(qn);
            if (lane == 0) *(st<Lk>(p, b, l, Lk::st_m_m) + n) = mnew;
            sum_parts(part, XL_E, MlTask::RC, fmaxf(fabsf(qn), expf(-mnew)) + 1e-6f, sc(p, Lk::sc_sh2, b) + n * XL_DM,
                      XL_DM);
            head_output(n * XL_DM, XL_DM, sc(p, Lk::sc_sh2, b), NORM_LAYER, 1e-5f, // mo of head n
                        wvec(p, wb<Lk>(l, Lk::b_layer_mlstm_mlstm_cell_outnorm_weight)),
                        wvec(p, wb<Lk>(l, Lk::b_layer_mlstm_mlstm_cell_outnorm_bias)),
                        wvec(p, wb<Lk>(l, Lk::b_layer_mlstm_learnable_skip)), sc(p, Lk::sc_xc2, b), sc(p, Lk::sc_xg, b),
                        sc(p, Lk::sc_mo, b));
        }
        c_rows.finish();
    }

    __device__ static void ml_output(const Params &p, int l, int b)
    {
        float y[HPT], u[HPT], nf[HPT], mean[1], rstd[1];
        float *ub = sc(p, Lk::sc_u, b);
        h_load(y, sc(p, Lk::sc_ym, b));
        h_load(u, ub);
        h_load_w(nf, wvec(p, wb<Lk>(l, Lk::b_layer_final_norm_weight)));
        h_group_stats(y, 1e-5f, mean, rstd);
#pragma unroll
        for (int k = 0; k < HPT; k++) u[k] += h_norm_value(y, k, mean, rstd) * nf[k];
        h_store(ub, u);
        if (STATE_WRITEBACK > 1 && threadIdx.x == 0) commit_logged((int *)st<Lk>(p, b, l, Lk::st_m_logged));
    }

    // Phases 1, 3, 4 and 7 are projections; the others a CTA per entry, gate parts, memory tasks.
    __device__ static bool opens_with_projection(int phase)
    {
        return phase == 1 || phase == 3 || phase == 4 || phase == 7;
    }

    __device__ static void run(const Params &p, int phase, int l, int lo, int hi)
    {
        int a, e;
        switch (phase) {
        case 0:
            for (int b = lo; b < hi; b++) sl_input(p, l, b);
            break;
        case 1: { // gates: (i, f) of [xc | hprev], sums into sg, then (z, o) of [xn | hprev] and the cell
            const long wi[2] = {Lk::b_layer_slstm_igate_input_weight, Lk::b_layer_slstm_zgate_input_weight};
            const long wf[2] = {Lk::b_layer_slstm_fgate_input_weight, Lk::b_layer_slstm_ogate_input_weight};
            const long bi[2] = {Lk::b_layer_slstm_igate_state_bias, Lk::b_layer_slstm_zgate_state_bias};
            const long bf[2] = {Lk::b_layer_slstm_fgate_state_bias, Lk::b_layer_slstm_ogate_state_bias};
#pragma unroll 1
            for (int q = 0; q < 2; q++) {
                In in = in_act(p, q ? Lk::sc_xnh : Lk::sc_xch);
                Mat m[2] = {mat(wb<Lk>(l, wi[q]), wb<Lk>(l, bi[q])), mat(wb<Lk>(l, wf[q]), wb<Lk>(l, bf[q]))};
                proj_rows<2, false, 2 * XL_BS>(p, in, m, XL_BS, lo, hi, [&](int b, int o, const float (&v)[2]) {
                    float *g = sc(p, Lk::sc_sg, b) + o; // g[0], g[H]: i, f
                    if (q == 0) {
                        g[0] = v[0];
                        g[H] = v[1];
                        return;
                    }
                    const float i = g[0], f = g[H], z = v[0], og = v[1];
                    float *cst = st<Lk>(p, b, l, Lk::st_s_c) + o, *nst = st<Lk>(p, b, l, Lk::st_s_n) + o;
                    float *mst = st<Lk>(p, b, l, Lk::st_s_m) + o;
                    const float lf = *mst + logsigmoidf(f), mnew = fmaxf(i, lf);
                    const float ig = expf(i - mnew), fg = expf(lf - mnew);
                    const float c = fg * *cst + ig * tanhf(z), n = fg * *nst + ig;
                    *cst = c;
                    *nst = n;
                    *mst = mnew;
                    sc(p, Lk::sc_sh, b)[o] = sigmoidf_(og) * c / (n + 1e-6f);
                });
            }
            break;
        }
        case 2:
            for (int b = lo; b < hi; b++) sl_output(p, l, b);
            break;
        case 3: {
            In in = in_act(p, Lk::sc_xn2);
            const Mat m[2] = {mat(wb<Lk>(l, Lk::b_layer_mlstm_x_proj_weight), -1, XL_E)
                                  .with_state(st_off<Lk>(l, Lk::st_m_conv), XL_K - 1),
                              mat(wb<Lk>(l, Lk::b_layer_mlstm_gate_proj_weight), -1, XL_E)};
            proj_rows<1, false, H>(p, in, m, 0, lo, hi, [&](int b, int o, const float (&v)[1]) {
                if (stack_index(m, o) == 1) {
                    sc(p, Lk::sc_xg, b)[o] = v[0];
                    return;
                }
                sc(p, Lk::sc_xm, b)[o] = v[0];
                const float *taps = wvec(p, wb<Lk>(l, Lk::b_layer_mlstm_conv1d_conv_weight));
                const float *bias = wvec(p, wb<Lk>(l, Lk::b_layer_mlstm_conv1d_conv_bias));
                sc(p, Lk::sc_xc2, b)[o] = siluf(conv_step<XL_K>(taps, bias, st<Lk>(p, b, l, Lk::st_m_conv), o, v[0]));
            });
            break;
        }
        case 4: { // q, k read xc2; v reads xm
            const long w[3] = {Lk::b_layer_mlstm_q_proj_weight, Lk::b_layer_mlstm_k_proj_weight,
                               Lk::b_layer_mlstm_v_proj_weight};
            for (int i = 0; i < 3; i++) {
                if (!part(lo, hi, i * XL_E, XL_E, a, e)) continue;
                In in = in_act(p, i < 2 ? Lk::sc_xc2 : Lk::sc_xm);
                const int off = i * XL_E;
                auto epi = [&](int b, int o, const float (&v)[1]) { sc(p, Lk::sc_qkv, b)[off + o] = v[0]; };
                if constexpr (XL_QB < 128) {
                    block_rows<XL_QB>(p, in, wb<Lk>(l, w[i]), a, e, epi);
                } else {
                    Mat m[1] = {mat(wb<Lk>(l, w[i]))};
                    proj_rows<1, false, XL_QB>(p, in, m, XL_QB, a, e, epi);
                }
            }
            break;
        }
        case 5:
            gate_parts(p, l, lo, hi);
            break;
        case 6:
            ml_cell(p, l, lo, hi);
            break;
        case 7: {
            In in = in_act(p, Lk::sc_mo);
            Mat m[1] = {mat(wb<Lk>(l, Lk::b_layer_mlstm_proj_down_weight))};
            proj_rows<1, false, XL_E>(p, in, m, 0, lo, hi, [&](int b, int o, const float (&v)[1]) {
                sc(p, Lk::sc_ym, b)[o] = v[0] + ld_act(sc(p, Lk::sc_so, b) + o);
            });
            break;
        }
        case 8:
            for (int b = lo; b < hi; b++) ml_output(p, l, b);
            break;
        }
    }
};
