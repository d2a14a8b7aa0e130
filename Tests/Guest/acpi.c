/*
 * checkguest: ACPI. RSDP -> XSDT/RSDT -> MADT (CPUs, IOAPICs, overrides) and FADT (power off, reset,
 * DSDT `_S5_`). Runs in user mode; tables are reached through the identity map.
 */
#include "guest.h"

struct acpi_info acpi;

struct gas {
    u8 space; /* 0 = memory, 1 = I/O */
    u8 bit_width;
    u8 bit_offset;
    u8 access_size;
    u64 address;
} __attribute__((packed));

struct ioapic_desc {
    u64 addr;
    u32 gsi_base;
    u32 entries;
};
static struct ioapic_desc ioapics[8];
static int n_ioapics;

static struct gas reset_reg, sleep_ctl;
static u8 reset_value;
static u32 pm1a_cnt, pm1b_cnt;
static int s5_typ_b;
static u32 isa_gsi[16];       /* ISA IRQ -> GSI after overrides */
static u16 isa_flags[16];     /* MPS INTI flags of the override (0 = bus default) */
static u16 isa_overridden;    /* bit per ISA IRQ with an override */

static u32 rd32(u64 a) { return *(volatile u32 *)phys(a); }
static u16 rd16(u64 a) { return *(volatile u16 *)phys(a); }
static u64 rd64(u64 a) { return *(volatile u64 *)phys(a); }

static int checksum_ok(u64 addr, u32 len) {
    u8 sum = 0;
    for (u32 i = 0; i < len; i++) sum = (u8)(sum + *(volatile u8 *)(addr + i));
    return sum == 0;
}

static int rsdp_ok(u64 a) {
    if (memcmp((void *)a, "RSD PTR ", 8)) return 0;
    if (!checksum_ok(a, 20)) return 0;
    u8 rev = *(u8 *)(a + 15);
    if (rev >= 2 && !checksum_ok(a, rd32(a + 20))) return 0;
    return 1;
}

static u64 find_rsdp(u64 hint) {
    if (hint && rsdp_ok(hint)) return hint;
    u64 ebda = (u64)rd16(0x40e) << 4;
    if (ebda >= 0x80000 && ebda < 0xa0000)
        for (u64 a = ebda; a < ebda + 1024; a += 16)
            if (rsdp_ok(a)) return a;
    for (u64 a = 0xe0000; a < 0x100000; a += 16)
        if (rsdp_ok(a)) return a;
    for (u64 a = 0xa0000; a < 0xa1000; a += 16) /* where Cloud Hypervisor (and our VMM) put it */
        if (rsdp_ok(a)) return a;
    return 0;
}

/* ---------------------------------------------------------------- MADT */
static void parse_madt(u64 t) {
    u32 len = rd32(t + 4);
    acpi.lapic_addr = rd32(t + 36);
    for (u64 p = t + 44; p + 2 <= t + len;) {
        u8 type = *(u8 *)p, l = *(u8 *)(p + 1);
        if (l < 2) break;
        switch (type) {
        case 0: /* processor local APIC */
            if (rd32(p + 4) & 1) {
                if (acpi.ncpus_madt < MAX_CPUS) acpi.apic_ids[acpi.ncpus_madt] = *(u8 *)(p + 3);
                acpi.ncpus_madt++;
            }
            break;
        case 1: /* IOAPIC */
            if (n_ioapics < (int)ARRAY_SIZE(ioapics)) {
                ioapics[n_ioapics].addr = rd32(p + 4);
                ioapics[n_ioapics].gsi_base = rd32(p + 8);
                n_ioapics++;
            }
            break;
        case 2: /* interrupt source override (bus 0 = ISA) */
            if (*(u8 *)(p + 2) == 0 && *(u8 *)(p + 3) < 16) {
                isa_gsi[*(u8 *)(p + 3)] = rd32(p + 4);
                isa_flags[*(u8 *)(p + 3)] = rd16(p + 8);
                isa_overridden |= (u16)(1u << *(u8 *)(p + 3));
            }
            break;
        case 5: /* local APIC address override */
            acpi.lapic_addr = rd64(p + 4);
            break;
        case 9: /* processor local x2APIC */
            if (rd32(p + 8) & 1) {
                u32 id = rd32(p + 4);
                if (acpi.ncpus_madt < MAX_CPUS) acpi.apic_ids[acpi.ncpus_madt] = id;
                acpi.ncpus_madt++;
            }
            break;
        }
        p += l;
    }
    for (int i = 0; i < n_ioapics; i++) {
        mmio_write32(ioapics[i].addr, 1);
        ioapics[i].entries = ((mmio_read32(ioapics[i].addr + 0x10) >> 16) & 0xff) + 1;
    }
    /* the IOAPIC serving the UART's GSI */
    acpi.uart_gsi = acpi_isa_gsi(4, &acpi.uart_gsi_flags);
    acpi_ioapic_for(acpi.uart_gsi, &acpi.ioapic_addr, &acpi.ioapic_gsi_base);
}

u32 acpi_isa_gsi(u32 irq, u16 *flags) {
    if (irq >= 16) {
        if (flags) *flags = 0;
        return irq;
    }
    if (flags) *flags = isa_flags[irq];
    return isa_overridden & (1u << irq) ? isa_gsi[irq] : irq;
}

int acpi_ioapic_for(u32 gsi, u64 *addr, u32 *gsi_base) {
    for (int i = 0; i < n_ioapics; i++)
        if (gsi >= ioapics[i].gsi_base && gsi < ioapics[i].gsi_base + ioapics[i].entries) {
            *addr = ioapics[i].addr;
            *gsi_base = ioapics[i].gsi_base;
            return 1;
        }
    return 0;
}

/* ---------------------------------------------------------------- FADT + DSDT _S5_ */
static int aml_s5(u64 dsdt, int *typ_a, int *typ_b) {
    u32 len = rd32(dsdt + 4);
    const u8 *p = (const u8 *)dsdt + 36, *end = (const u8 *)dsdt + len;
    for (; p + 8 < end; p++) {
        if (memcmp(p, "_S5_", 4)) continue;
        /* NameOp (0x08), optionally with a root prefix '\' right before the name */
        if (!(p[-1] == 0x08 || (p[-1] == '\\' && p[-2] == 0x08))) continue;
        const u8 *q = p + 4;
        if (*q++ != 0x12) continue; /* PackageOp */
        q += (*q >> 6) + 1;         /* PkgLength */
        q++;                        /* NumElements */
        int vals[2] = { -1, -1 };
        for (int i = 0; i < 2 && q < end; i++) {
            if (*q == 0x00) { vals[i] = 0; q++; }
            else if (*q == 0x01) { vals[i] = 1; q++; }
            else if (*q == 0xff) { vals[i] = 0xff; q++; }
            else if (*q == 0x0a) { vals[i] = q[1]; q += 2; }
            else if (*q == 0x0b) { vals[i] = q[1] | (q[2] << 8); q += 3; }
            else if (*q == 0x0c) { vals[i] = q[1] | (q[2] << 8); q += 5; }
            else break;
        }
        if (vals[0] < 0) continue;
        *typ_a = vals[0];
        *typ_b = vals[1] < 0 ? vals[0] : vals[1];
        return 1;
    }
    return 0;
}

/* The Generic Event Device (HW-reduced power button): the string "ACPI0013" (its _HID) followed, within
 * 256 bytes, by an Extended Interrupt descriptor (0x89, length, flags, count >= 1, u32 interrupts):
 * its first interrupt is the GSI. We cannot run AML, so this is a byte scan like the one for _S5_. */
static int aml_ged(u64 dsdt, s32 *gsi, u8 *flags) {
    u32 len = rd32(dsdt + 4);
    const u8 *p = (const u8 *)dsdt + 36, *end = (const u8 *)dsdt + len;
    for (; p + 8 <= end; p++) {
        if (memcmp(p, "ACPI0013", 8)) continue;
        for (const u8 *q = p + 8; q + 9 <= end && q < p + 8 + 256; q++) {
            u32 l = q[1] | (u32)q[2] << 8, n = q[4];
            if (q[0] != 0x89 || n < 1 || l < 2 + 4 * n || q + 3 + l > end) continue;
            *flags = q[3];
            *gsi = (s32)(q[5] | (u32)q[6] << 8 | (u32)q[7] << 16 | (u32)q[8] << 24);
            return 1;
        }
    }
    return 0;
}

static void parse_fadt(u64 t) {
    u32 len = rd32(t + 4);
    u64 dsdt = rd32(t + 40);
    if (len >= 148 && rd64(t + 140)) dsdt = rd64(t + 140);
    pm1a_cnt = rd32(t + 64);
    pm1b_cnt = rd32(t + 68);
    acpi.sci_int = rd16(t + 46);
    acpi.smi_cmd = rd32(t + 48);
    acpi.acpi_enable = *(u8 *)(t + 52);
    acpi.pm1a_evt = rd32(t + 56);
    acpi.pm1_evt_len = *(u8 *)(t + 88);
    if (!acpi.pm1a_evt && len >= 160) {
        struct gas x;
        memcpy(&x, (void *)(t + 148), sizeof x);
        if (x.space == 1) acpi.pm1a_evt = (u32)x.address;
    }
    if (len >= 116) acpi.fadt_flags = rd32(t + 112);
    acpi.hw_reduced = (acpi.fadt_flags >> 20) & 1;
    if (len >= 129) {
        memcpy(&reset_reg, (void *)(t + 116), sizeof reset_reg);
        reset_value = *(u8 *)(t + 128);
    }
    if (!pm1a_cnt && len >= 184) {
        struct gas x;
        memcpy(&x, (void *)(t + 172), sizeof x);
        if (x.space == 1) pm1a_cnt = (u32)x.address;
    }
    if (len >= 256) memcpy(&sleep_ctl, (void *)(t + 244), sizeof sleep_ctl);
    acpi.s5_typ = -1;
    if (dsdt && !memcmp((void *)dsdt, "DSDT", 4)) {
        aml_s5(dsdt, &acpi.s5_typ, &s5_typ_b);
        acpi.ged_found = aml_ged(dsdt, &acpi.ged_gsi, &acpi.ged_flags);
    }
}

static int sci_usable(void) { return !acpi.hw_reduced && acpi.pm1a_evt && acpi.pm1_evt_len >= 4; }

static const char *gas_str(char *buf, int len, const struct gas *g) {
    if (!g->address) return "none";
    format(buf, len, "%s:0x%lx", g->space == 1 ? "io" : g->space == 0 ? "mem" : "other", g->address);
    return buf;
}

void acpi_init(u64 rsdp_hint) {
    acpi.s5_typ = -1;
    acpi.ged_gsi = -1;
    u64 rsdp = find_rsdp(rsdp_hint);
    acpi.rsdp = rsdp;
    if (!rsdp) {
        println("WARN no ACPI RSDP (hint=0x%lx): assuming 1 CPU", rsdp_hint);
        acpi.ncpus_madt = 1;
        return;
    }
    u8 rev = *(u8 *)(rsdp + 15);
    u64 sdt = rev >= 2 && rd64(rsdp + 24) ? rd64(rsdp + 24) : rd32(rsdp + 16);
    int wide = rev >= 2 && rd64(rsdp + 24);
    u32 len = rd32(sdt + 4);
    char names[200];
    int nn = 0;
    names[0] = 0;
    for (u64 p = sdt + 36; p + (wide ? 8 : 4) <= sdt + len; p += wide ? 8 : 4) {
        u64 t = wide ? rd64(p) : rd32(p);
        if (!t) continue;
        if (nn + 6 < (int)sizeof names) {
            if (nn) names[nn++] = ',';
            memcpy(names + nn, (void *)t, 4);
            nn += 4;
            names[nn] = 0;
        }
        if (!memcmp((void *)t, "APIC", 4)) parse_madt(t);
        else if (!memcmp((void *)t, "FACP", 4)) parse_fadt(t);
    }
    /* power button: the GED; on a HW-reduced platform without one, GSI 5 (our VMM's default); else the
     * fixed power button (PM1 status, SCI) */
    if (!acpi.ged_found && acpi.hw_reduced) {
        acpi.ged_gsi = 5;
        acpi.ged_flags = 2; /* edge, active high */
    }
    char b1[40], b2[40], b3[24];
    const char *pwrbtn = acpi.ged_gsi >= 0 ? "ged" : sci_usable() ? "sci" : "none";
    if (acpi.ged_gsi >= 0) format(b3, sizeof b3, "%d", acpi.ged_gsi);
    else memcpy(b3, "none", 5);
    println("ACPI rsdp=0x%lx rev=%u %s=0x%lx tables=%s madt_cpus=%d lapic=0x%lx ioapic=0x%lx uart_gsi=%u",
            rsdp, rev, wide ? "xsdt" : "rsdt", sdt, names, acpi.ncpus_madt, acpi.lapic_addr, acpi.ioapic_addr,
            acpi.uart_gsi);
    println("ACPI-POWER hw_reduced=%d s5_typ=%d pm1a_cnt=0x%x sleep_ctl=%s reset=%s/0x%x reset_sup=%d pwrbtn=%s "
            "ged_gsi=%s ged_src=%s sci_gsi=%u pm1a_evt=0x%x",
            acpi.hw_reduced, acpi.s5_typ, pm1a_cnt, gas_str(b1, sizeof b1, &sleep_ctl), gas_str(b2, sizeof b2, &reset_reg),
            reset_value, (acpi.fadt_flags >> 10) & 1, pwrbtn, b3,
            acpi.ged_found ? "dsdt" : acpi.ged_gsi >= 0 ? "fallback" : "none", acpi_isa_gsi(acpi.sci_int, NULL),
            acpi.pm1a_evt);
}

/* ---------------------------------------------------------------- power button */

static int pwrbtn_via;  /* 0 = none, 1 = GED interrupt, 2 = SCI + PM1 PWRBTN_STS */
static u32 pwrbtn_gsi;
static u64 seen_pwrbtn, seen_sci;

/* BSP, after the UART routing: route the GED's GSI (edge) or the SCI, and enable the fixed power button. */
void acpi_power_button_init(u32 dest) {
    if (acpi.ged_gsi >= 0) {
        pwrbtn_gsi = (u32)acpi.ged_gsi;
        u32 lo = VEC_PWRBTN; /* always edge: the handler has nothing to clear */
        if (acpi.ged_flags & 4) lo |= 1u << 13;
        if (!(acpi.ged_flags & 2)) println("WARN power button: the GED interrupt is level-triggered; routed as edge");
        if (ioapic_route(pwrbtn_gsi, lo, dest)) pwrbtn_via = 1;
        else println("WARN power button: no IOAPIC for the GED's gsi=%u", pwrbtn_gsi);
        return;
    }
    if (!sci_usable()) return;
    u16 f;
    pwrbtn_gsi = acpi_isa_gsi(acpi.sci_int, &f);
    u16 sts = (u16)acpi.pm1a_evt, en = (u16)(acpi.pm1a_evt + acpi.pm1_evt_len / 2);
    /* ACPI mode: SCI_EN (PM1_CNT bit 0), through ACPI_ENABLE to SMI_CMD if firmware left it off */
    if (pm1a_cnt && acpi.smi_cmd && acpi.acpi_enable && !(inw((u16)pm1a_cnt) & 1)) {
        outb((u16)acpi.smi_cmd, acpi.acpi_enable);
        u64 t0 = clock_ns();
        while (!(inw((u16)pm1a_cnt) & 1) && clock_ns() - t0 < 300000000ul) delay_ns(1000000);
        if (!(inw((u16)pm1a_cnt) & 1)) println("WARN power button: SCI_EN still 0 after ACPI_ENABLE");
    }
    outw(en, 0);              /* no fixed events ... */
    outw(sts, (u16)inw(sts)); /* ... and none pending */
    sci_pm1_sts_port = sts;
    /* the SCI is level, active low unless an override says otherwise (q35: GSI 9, level, active high) */
    u32 lo = VEC_SCI;
    if ((f & 3) != 1) lo |= 1u << 13;
    if (((f >> 2) & 3) != 1) lo |= 1u << 15;
    if (!ioapic_route(pwrbtn_gsi, lo, dest)) {
        println("WARN power button: no IOAPIC for the SCI's gsi=%u", pwrbtn_gsi);
        return;
    }
    outw(en, 0x100);          /* PWRBTN_EN */
    pwrbtn_via = 2;
}

/* BSP loop: a power button press (counted by pwrbtn_isr or sci_isr) -> POWER-BUTTON, then S5
 * (with `power_button=log` on the command line: only the marker). */
void acpi_power_button_poll(void) {
    struct irq_counters *ic = irq_counters_of(0);
    if (pwrbtn_via == 1 && ic->pwrbtn != seen_pwrbtn) {
        seen_pwrbtn = ic->pwrbtn;
        println("POWER-BUTTON gsi=%u via=ged count=%lu", pwrbtn_gsi, seen_pwrbtn);
    } else if (pwrbtn_via == 2 && ic->sci != seen_sci) {
        seen_sci = ic->sci;
        u64 sts = __atomic_exchange_n(&ic->sci_sts, 0, __ATOMIC_ACQ_REL);
        if (!(sts & 0x100)) return; /* only PWRBTN_EN is enabled; q35 raises a second SCI per press with no status */
        println("POWER-BUTTON gsi=%u via=sci count=%lu sts=0x%lx", pwrbtn_gsi, seen_sci, sts);
    } else {
        return;
    }
    char how[8] = "";
    if (cmdline_get("power_button", how, sizeof how) && !strncmp(how, "log", 4)) return;
    println("POWEROFF by=power-button");
    acpi_poweroff();
}

/* ---------------------------------------------------------------- power */
static void gas_write(const struct gas *g, u64 v) {
    int w = g->bit_width ? g->bit_width : 8;
    if (g->space == 1) {
        if (w <= 8) outb((u16)g->address, (u8)v);
        else if (w <= 16) outw((u16)g->address, (u16)v);
        else outl((u16)g->address, (u32)v);
    } else if (g->space == 0) {
        if (w <= 8) *(volatile u8 *)g->address = (u8)v;
        else if (w <= 16) *(volatile u16 *)g->address = (u16)v;
        else if (w <= 32) *(volatile u32 *)g->address = (u32)v;
        else *(volatile u64 *)g->address = v;
    }
}

NORETURN void acpi_poweroff(void) {
    if (acpi.hw_reduced && sleep_ctl.address) {
        int typ = acpi.s5_typ >= 0 ? acpi.s5_typ : 5;
        gas_write(&sleep_ctl, (u64)((typ & 7) << 2) | 0x20);
    } else if (pm1a_cnt) {
        int typ = acpi.s5_typ >= 0 ? acpi.s5_typ : 0;
        outw((u16)pm1a_cnt, (u16)(((typ & 7) << 10) | 0x2000));
        if (pm1b_cnt) outw((u16)pm1b_cnt, (u16)(((s5_typ_b & 7) << 10) | 0x2000));
    }
    delay_ns(500000000ul);
    println("WARN poweroff had no effect: halting");
    sys_halt_forever();
}

/* reset=acpi (default: RESET_REG, then the i8042, then a triple fault), reset=kbd, reset=triple */
NORETURN void acpi_reboot(void) {
    char how[16] = "acpi";
    cmdline_get("reset", how, sizeof how);
    if (!strncmp(how, "acpi", 5) && (acpi.hw_reduced || (acpi.fadt_flags & (1u << 10))) && reset_reg.address) {
        gas_write(&reset_reg, reset_value);
        delay_ns(200000000ul);
        println("WARN reset register had no effect");
    }
    if (strncmp(how, "triple", 7)) {
        outb(0x64, 0xfe); /* i8042 pulse reset */
        delay_ns(200000000ul);
        println("WARN i8042 reset had no effect");
    }
    sys_reset(); /* triple fault */
}
