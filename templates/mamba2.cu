// ---- mamba2.cu: towers.1, the Mamba2 layer -------------------------------------------------
// t = RMSNorm(u; norm1)
// phase 0: xs = silu(conv(input_proj t)), z = z_proj t, bv = silu(conv(b_proj t)),
//          cv = silu(conv(c_proj t)), dt = softplus(dt_proj t), stacked   2E + 2S + NM rows
// phase 1: per (entry, head n, row h): ssm[n,h,:] update, y = cv . ssm + d x;
//          yz = y * silu(z)                                 one warp per ROWS rows
// phase 2: u += out_proj(RMSNorm(yz; norm.weight, 1e-5))               H rows
struct Mamba2 {
    using Lk = L_mamba2;
    static constexpr int TOWER = 1;
    static constexpr int PHASES = 3;
    static constexpr int ROWS = 16;                         // state rows per warp task, loads in flight
    static constexpr int TASKS = (MB_E + ROWS - 1) / ROWS; // per entry

    __device__ static int units(int phase, int nb)
    {
        switch (phase) {
        case 0: return 2 * MB_E + 2 * MB_S + MB_NM;
        case 1: return nb * TASKS;
        }
        return H;
    }

    __device__ static long cost(int phase, int nb)
    {
        // Measured against the other towers' phases of the same stage (per-tower trace at batch
        // 1, 8 and 50, notes/gpu.md runs 60-64): the conv of the input, B and C rows (its state
        // read and written per entry; 2200 over the stack); the state task (3/4 of its bytes'
        // cost); the output projection's RMS statistics over MB_E, which every CTA of the phase
        // works out for every entry: their total grows with the entries and with the CTAs the
        // phase gets for them, about as nb^2 (+100% at batch 50, +11% at 8).
        switch (phase) {
        case 0: return row_cost(1, H, nb, 2200);
        case 1: return state_cost(2L * ROWS * MB_S * 4) * 3 / 4;
        }
        return row_cost(1, MB_E, nb, (long)nb * MB_E / 15);
    }

    // The five projections of t in phase 0, stacked (one staging of t for a CTA's rows of all of
    // them): input, z, b, c and dt. The input, b and c projections feed a causal conv (taps,
    // bias, state) and silu.
    struct Proj0 {
        long w, bias, conv_w, conv_b, conv_state; // conv_w < 0: no conv; bias < 0: none
        Buf out;
        int rows;
        bool softplus; // dt
    };

    // Phase 1 is the state update; 0 and 2 projections.
    __device__ static bool opens_with_projection(int phase) { return phase != 1; }

    __device__ static void run(const Params &p, int phase, int l, int lo, int hi)
    {
        switch (phase) {
        case 0: {
            const Proj0 proj[5] = {
                {Lk::b_layer_input_proj_weight, -1, Lk::b_layer_input_conv_conv_weight,
                 Lk::b_layer_input_conv_conv_bias, Lk::st_x_conv, Lk::sc_xs, MB_E, false},
                {Lk::b_layer_z_proj_weight, -1, -1, -1, -1, Lk::sc_z, MB_E, false},
                {Lk::b_layer_b_proj_weight, -1, Lk::b_layer_b_conv_conv_weight, Lk::b_layer_b_conv_conv_bias,
                 Lk::st_b_conv, Lk::sc_bv, MB_S, false},
                {Lk::b_layer_c_proj_weight, -1, Lk::b_layer_c_conv_conv_weight, Lk::b_layer_c_conv_conv_bias,
                 Lk::st_c_conv, Lk::sc_cv, MB_S, false},
                {Lk::b_layer_dt_proj_weight, Lk::b_layer_dt_proj_bias, -1, -1, -1, Lk::sc_dt, MB_NM, true},
            };
            Mat m[5];
            for (int i = 0; i < 5; i++) {
                m[i] = mat(wb<Lk>(l, proj[i].w), proj[i].bias < 0 ? -1 : wb<Lk>(l, proj[i].bias), proj[i].rows);
                if (proj[i].conv_w >= 0) m[i] = m[i].with_state(st_off<Lk>(l, proj[i].conv_state), MB_K - 1);
            }
            In in = in_rms(in_act(p, Lk::sc_u), EPS_BLOCK, wvec(p, wb<Lk>(l, Lk::b_norm1_weight)));
            proj_rows<1, true, H>(p, in, m, 0, lo, hi, [&](int b, int o, const float (&v)[1]) {
                const Proj0 &q = proj[stack_index(m, o)];
                float y = v[0];
                if (q.conv_w >= 0)
                    y = siluf(conv_step<MB_K>(wvec(p, wb<Lk>(l, q.conv_w)), wvec(p, wb<Lk>(l, q.conv_b)),
                                              st<Lk>(p, b, l, q.conv_state), o, y));
                if (q.softplus) y = softplusf(y);
                sc(p, q.out, b)[o] = y;
            });
            break;
        }
        case 1: { // one warp per (entry, ROWS inner rows r = n * MB_HD + h): S state columns each
            static_assert(32 % ROWS == 0, "the lanes of a task split evenly over its rows");
            const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
            for (int t = lo + warp; t < hi; t += WARPS) {
                const int b = t / TASKS, r0 = t % TASKS * ROWS;
                // lanes ROWS apart finish row r0 + mine; its z is loaded with the state
                const int mine = lane / (32 / ROWS), rm = r0 + mine;
                const bool writes = lane % (32 / ROWS) == 0 && rm < MB_E;
                const float z = writes ? ld_act(sc(p, Lk::sc_z, b) + rm) : 0.0f;
                const float *bv = sc(p, Lk::sc_bv, b), *cv = sc(p, Lk::sc_cv, b);
                float dt[ROWS], decay[ROWS], x[ROWS], y[ROWS];
#pragma unroll
                for (int u = 0; u < ROWS; u++) {
                    const int r = min(r0 + u, MB_E - 1), n = r / MB_HD;
                    dt[u] = ld_act(sc(p, Lk::sc_dt, b) + n);
                    decay[u] = expf(wvec(p, wb<Lk>(l, Lk::b_layer_a))[n] * dt[u]);
                    x[u] = ld_act(sc(p, Lk::sc_xs, b) + r);
                    y[u] = 0.0f;
                }
                StateElem *ssm = stm<Lk>(p, b, l, Lk::st_ssm) + (long)r0 * MB_S;
                for (int s = lane * 4; s < MB_S; s += 128) {
                    const float4 b4 = ld_act4(bv + s), c4 = ld_act4(cv + s);
                    float4 h[ROWS];
#pragma unroll
                    for (int u = 0; u < ROWS; u++)
                        if (r0 + u < MB_E) h[u] = ld_state4(ssm + (long)u * MB_S + s);
#pragma unroll
                    for (int u = 0; u < ROWS; u++) {
                        if (r0 + u >= MB_E) continue;
                        h[u].x = decay[u] * h[u].x + dt[u] * b4.x * x[u];
                        h[u].y = decay[u] * h[u].y + dt[u] * b4.y * x[u];
                        h[u].z = decay[u] * h[u].z + dt[u] * b4.z * x[u];
                        h[u].w = decay[u] * h[u].w + dt[u] * b4.w * x[u];
                        h[u] = st_state4(ssm + (long)u * MB_S + s, h[u]);
                        y[u] += c4.x * h[u].x + c4.y * h[u].y + c4.z * h[u].z + c4.w * h[u].w;
                    }
                }
                float xm = x[0];
#pragma unroll
                for (int u = 1; u < ROWS; u++)
                    if (u == mine) xm = x[u];
                const float ym = transpose_sum<ROWS>(y); // the warp's sum of y[mine]
                if (writes) {
                    const float yr = ym + wvec(p, wb<Lk>(l, Lk::b_layer_d))[rm / MB_HD] * xm;
                    sc(p, Lk::sc_yz, b)[rm] = yr * siluf(z);
                }
            }
            break;
        }
        case 2: {
            In in = in_rms(in_act(p, Lk::sc_yz), 1e-5f, wvec(p, wb<Lk>(l, Lk::b_layer_norm_weight)));
            Mat m[1] = {mat(wb<Lk>(l, Lk::b_layer_out_proj_weight))};
            proj_rows<1, true, MB_E>(p, in, m, 0, lo, hi, [&](int b, int o, const float (&v)[1]) {
                sc(p, Lk::sc_u, b)[o] += v[0];
            });
            break;
        }
        }
    }
};
