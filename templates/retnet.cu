// ---- retnet.cu: towers.2, the RetNet (retention) layer --------------------------------------
// t = RMSNorm(u; norm1)
// phase 0: q, k * D^-0.5, v, g = projections of t, stacked                4H rows
// phase 1: per (entry, head n, STATE_ROWS rows i, 128 columns j): rotate q, k by pos;
//          R update; o[n,j] = sum_i qr[i] R[i,j] / sqrt(scale * decay + 1): one partial sum
//          per STATE_ROWS rows, added up and divided by the head's last task to finish,
//          which also writes og = silu(g) * RMSNorm_per_head(o; 1e-6) for the head
// phase 2: u += out_proj(og); commits scale, pos and the count of logged steps
struct RetNet {
    using Lk = L_retnet;
    static constexpr int TOWER = 2;
    static constexpr int PHASES = 3;
    using Task = StateTask<RN_D, RN_NH>; // phase 1's tasks over R

    __device__ static int units(int phase, int nb)
    {
        switch (phase) {
        case 0: return 4 * H;
        case 1: return Task::count(nb);
        }
        return H;
    }

    __device__ static long cost(int phase, int nb)
    {
        return phase == 1 ? state_cost(2L * STATE_ROWS * 128 * 4) : row_cost(1, H, nb);
    }

    // Phase 1 is the retention; 0 and 2 projections.
    __device__ static bool opens_with_projection(int phase) { return phase != 1; }

    __device__ static void run(const Params &p, int phase, int l, int lo, int hi)
    {
        switch (phase) {
        case 0: {
            In in = in_rms(in_act(p, Lk::sc_u), EPS_BLOCK, wvec(p, wb<Lk>(l, Lk::b_norm1_weight)));
            const Mat m[4] = {mat(wb<Lk>(l, Lk::b_layer_q_proj_weight), -1, H),
                              mat(wb<Lk>(l, Lk::b_layer_k_proj_weight), -1, H),
                              mat(wb<Lk>(l, Lk::b_layer_v_proj_weight), -1, H),
                              mat(wb<Lk>(l, Lk::b_layer_g_proj_weight), -1, H)};
            const Buf out[4] = {Lk::sc_q, Lk::sc_k, Lk::sc_v, Lk::sc_g};
            proj_rows<1, true, H>(p, in, m, 0, lo, hi, [&](int b, int o, const float (&v)[1]) {
                const int i = stack_index(m, o);
                sc(p, out[i], b)[o] = v[0] * (i == 1 ? RN_KSCALE : 1.0f);
            });
            break;
        }
        case 1: { // one warp per (entry, head, STATE_ROWS rows, 128 columns of R): a lane owns 4
                  // columns; a warp's tasks are a contiguous run (warp_tasks), the column chunk
                  // fastest: it rotates the rows of q and k once a row chunk
            const int warp = threadIdx.x >> 5;
            float *qr = warp_vecs[warp][0], *kr = warp_vecs[warp][1];
            int first, end, done = 0;
            warp_tasks(lo, hi, first, end);
            auto r_rows = state_stream<Task, float>(first, end, [&](int b) { return st<Lk>(p, b, l, Lk::st_R); });
            for (int t = first; t < end; t++) {
                const Task task(t);
                const int b = task.b, n = task.n, i0 = task.i0, j = task.col();
                const float *q = sc(p, Lk::sc_q, b) + n * RN_D, *k = sc(p, Lk::sc_k, b) + n * RN_D;
                task.fill_rows(t, first, [&](int r) { // the row chunk's rows of q and k rotated by pos
                    // rot(x)[2j] = -x[2j+1], rot(x)[2j+1] = x[2j]; pos * angle in fp32
                    const int pos = __float_as_int(*st<Lk>(p, b, l, Lk::st_pos));
                    const int i = i0 + r, partner = i ^ 1;
                    const float th = (float)pos * wvec(p, wb<Lk>(l, Lk::b_layer_angle))[i];
                    const float c = cosf(th), s = sinf(th), sign = (i & 1) ? 1.0f : -1.0f;
                    qr[r] = ld_act(q + i) * c + sign * ld_act(q + partner) * s;
                    kr[r] = ld_act(k + i) * c + sign * ld_act(k + partner) * s;
                });
                const float decay = wvec(p, wb<Lk>(l, Lk::b_layer_decay))[n];
                float *part = sc(p, Lk::sc_o_part, b) + n * RN_D;
                const float4 v = j < RN_D ? ld_act4(sc(p, Lk::sc_v, b) + n * RN_D + j) : make_float4(0.f, 0.f, 0.f, 0.f);
                const float4 num =
                    r_rows.update(t, decay, kr, v, qr, state_log<Lk>(p, b, l, Lk::st_R_log, Lk::st_R_logged, RN_LOG_ENTRY));
                if (j < RN_D) *(float4 *)(part + task.rc * H + j) = num;
                if (!last_task_of_head((unsigned *)sc(p, Lk::sc_o_count, b) + n, Task::PER_HEAD, t, end, done)) continue;
                const float scale = *(st<Lk>(p, b, l, Lk::st_scale) + n) * decay + 1.0f;
                sum_parts(part, H, Task::RC, sqrtf(scale), sc(p, Lk::sc_o, b) + n * RN_D, RN_D);
                head_output(n * RN_D, RN_D, sc(p, Lk::sc_o, b), NORM_RMS, 1e-6f, nullptr, nullptr, nullptr, nullptr,
                            sc(p, Lk::sc_g, b), sc(p, Lk::sc_og, b)); // og of head n
            }
            r_rows.finish();
            break;
        }
        case 2: {
            In in = in_act(p, Lk::sc_og);
            Mat m[1] = {mat(wb<Lk>(l, Lk::b_layer_out_proj_weight))};
            proj_rows<1, false, H>(p, in, m, 0, lo, hi, [&](int b, int o, const float (&v)[1]) {
                sc(p, Lk::sc_u, b)[o] += v[0];
                // commit the state phase 1 read: scale per head, then the position
                if (o < RN_NH) {
                    float *s = st<Lk>(p, b, l, Lk::st_scale) + o;
                    *s = *s * wvec(p, wb<Lk>(l, Lk::b_layer_decay))[o] + 1.0f;
                }
                if (o == 0) {
                    int *pos = (int *)st<Lk>(p, b, l, Lk::st_pos);
                    *pos += 1;
                    if (STATE_WRITEBACK > 1) commit_logged((int *)st<Lk>(p, b, l, Lk::st_R_logged));
                }
            });
            break;
        }
        }
    }
};
