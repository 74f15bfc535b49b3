"""Human-readable summary of a bench/manager.py result."""


def fmt(v, unit=""):
    return "n/a" if v is None else f"{v:.1f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def start_summary(sl):
    med, ratios = sl.get("medians", {}), sl.get("ratios", {})
    lines = [f"== start latency (API call -> VIREO-GUEST-UP), median of {sl.get('runs')} "
             f"interleaved runs, {sl.get('accel')}"]
    for k in ("raw", "vireo", "libvirt"):
        lines.append(f"  {k:8s} {fmt(med.get(k), ' ms'):>12s}   runs: {sl.get(k + '_ms')}")
    lines.append(f"  vireo overhead over raw QEMU: {fmt(sl.get('overhead_ms'), ' ms')} "
                 f"(x{ratios.get('vireo_over_raw', 'n/a')}); vireo/libvirt: "
                 f"x{ratios.get('vireo_over_libvirt', 'n/a')}; libvirt overhead: "
                 f"{fmt(sl.get('libvirt_overhead_ms'), ' ms')}")
    spread = ", ".join(f"{k} {v['min']:.0f}-{v['max']:.0f} ms (sd {v['stdev']})"
                       for k, v in sl.get("spread", {}).items())
    lines.append(f"  spread: {spread}")
    lines.append("  request -> QEMU process exists (median): " + ", ".join(
        f"{k} {v:.1f} ms" for k, v in sl.get("spawn_medians", {}).items()))
    lines.append(f"  goals: {sl.get('goals')}")
    for k, v in sl.get("errors", {}).items():
        lines.append(f"  {k} error: {v}")
    return lines


def control_summary(cp):
    lines = [f"== control plane: {cp.get('instances')} defined instances, "
             f"{cp.get('clients')} clients, {cp.get('duration_s')} s"]
    for peer, keys in (("vireo", ("list", "list_recursion1")),
                       ("libvirt", ("list_spawn", "list_shell"))):
        p = cp.get(peer, {})
        if "error" in p:
            lines.append(f"  {peer}: error: {p['error']}")
            continue
        for k in keys:
            r = p.get(k, {})
            lines.append(f"  {peer:8s} {k:16s} p50 {fmt(r.get('p50_ms'), ' ms'):>10s}  p99 "
                         f"{fmt(r.get('p99_ms'), ' ms'):>10s}  {fmt(r.get('throughput_rps'))} "
                         f"req/s  errors {r.get('errors')}")
        lines.append(f"  {peer:8s} RSS {fmt(p.get('rss_mib'), ' MiB')} "
                     f"(peak {fmt((p.get('rss_peak_kib') or 0) / 1024, ' MiB')})")
    lines.append(f"  goals: {cp.get('goals')}")
    return lines


def summary(result):
    lines = [""]
    if result.get("start_latency"):
        lines += start_summary(result["start_latency"])
    if result.get("control_plane"):
        lines += control_summary(result["control_plane"])
    print("\n".join(lines))
