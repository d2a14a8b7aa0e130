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
};
static struct ioapic_desc ioapics[8];
static int n_ioapics;

static struct gas reset_reg, sleep_ctl;
static u8 reset_value;
static u32 pm1a_cnt, pm1b_cnt;
static int s5_typ_b;

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
    acpi.uart_gsi = 4;
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
        case 2: /* interrupt source override */
            if (*(u8 *)(p + 2) == 0 && *(u8 *)(p + 3) == 4) {
                acpi.uart_gsi = rd32(p + 4);
                acpi.uart_gsi_flags = rd16(p + 8);
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
    /* the IOAPIC serving the UART's GSI */
    for (int i = 0; i < n_ioapics; i++) {
        u64 a = ioapics[i].addr;
        mmio_write32(a, 1);
        u32 entries = ((mmio_read32(a + 0x10) >> 16) & 0xff) + 1;
        if (acpi.uart_gsi >= ioapics[i].gsi_base && acpi.uart_gsi < ioapics[i].gsi_base + entries) {
            acpi.ioapic_addr = a;
            acpi.ioapic_gsi_base = ioapics[i].gsi_base;
        }
    }
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

static void parse_fadt(u64 t) {
    u32 len = rd32(t + 4);
    u64 dsdt = rd32(t + 40);
    if (len >= 148 && rd64(t + 140)) dsdt = rd64(t + 140);
    pm1a_cnt = rd32(t + 64);
    pm1b_cnt = rd32(t + 68);
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
    if (dsdt && !memcmp((void *)dsdt, "DSDT", 4)) aml_s5(dsdt, &acpi.s5_typ, &s5_typ_b);
}

static const char *gas_str(char *buf, int len, const struct gas *g) {
    if (!g->address) return "none";
    format(buf, len, "%s:0x%lx", g->space == 1 ? "io" : g->space == 0 ? "mem" : "other", g->address);
    return buf;
}

void acpi_init(u64 rsdp_hint) {
    acpi.s5_typ = -1;
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
    char b1[40], b2[40];
    println("ACPI rsdp=0x%lx rev=%u %s=0x%lx tables=%s madt_cpus=%d lapic=0x%lx ioapic=0x%lx uart_gsi=%u",
            rsdp, rev, wide ? "xsdt" : "rsdt", sdt, names, acpi.ncpus_madt, acpi.lapic_addr, acpi.ioapic_addr,
            acpi.uart_gsi);
    println("ACPI-POWER hw_reduced=%d s5_typ=%d pm1a_cnt=0x%x sleep_ctl=%s reset=%s/0x%x reset_sup=%d", acpi.hw_reduced,
            acpi.s5_typ, pm1a_cnt, gas_str(b1, sizeof b1, &sleep_ctl), gas_str(b2, sizeof b2, &reset_reg), reset_value,
            (acpi.fadt_flags >> 10) & 1);
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
