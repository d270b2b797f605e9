/* SPDX-License-Identifier: MIT */
/*
 * The interrupt controller the other modules read their interrupts from:
 * a GICv3 distributor whose GICD_ISPENDR shows the SPI lines.
 */
#include "fw.h"

#define GICD_CTLR       0x0000
#define GICD_TYPER      0x0004
#define GICD_SETSPI_NSR 0x0040
#define GICD_CLRSPI_NSR 0x0048
#define GICD_ISENABLER  0x0100
#define GICD_PIDR2      0xffe8

void check_gic(void)
{
    uint32_t typer = mmio_read32(FW_GICD_BASE + GICD_TYPER);
    uint32_t lines = ((typer & 0x1f) + 1) * 32;
    uint32_t pending = 0;
    /* An SPI no device of this machine drives. */
    const uint32_t probe = 0x3f;

    fw_check("gicv3", ((mmio_read32(FW_GICD_BASE + GICD_PIDR2) >> 4) & 0xf) == 3,
             "GICD_PIDR2.ArchRev says GICv3");
    fw_check("lines",
             lines >= VMAPPLE_GIC_SPI_BASE + VMAPPLE_PCI_INTX_SPI_BASE + VMAPPLE_PCI_INTX_LINES,
             "%u interrupt IDs cover the AES SPI 0x%x and the PCI INTx SPIs 0x%x..0x%x", lines,
             FW_SPI_AES, VMAPPLE_PCI_INTX_SPI_BASE,
             VMAPPLE_PCI_INTX_SPI_BASE + VMAPPLE_PCI_INTX_LINES - 1);

    for (uint32_t spi = 0; spi + VMAPPLE_GIC_SPI_BASE < lines; spi++) {
        if (fw_spi_pending(spi)) {
            pending++;
        }
    }
    fw_check("quiet-at-boot", pending == 0, "%u SPIs pending before any device was touched",
             pending);

    /* The distributor the checks rely on reports what is set pending. */
    mmio_write32(FW_GICD_BASE + GICD_CTLR, 0x12); /* ARE_NS | EnableGrp1NS */
    mmio_write32(FW_GICD_BASE + GICD_SETSPI_NSR, probe + VMAPPLE_GIC_SPI_BASE);
    pending = fw_spi_pending(probe);
    mmio_write32(FW_GICD_BASE + GICD_CLRSPI_NSR, probe + VMAPPLE_GIC_SPI_BASE);
    fw_check("ispendr", pending && !fw_spi_pending(probe),
             "SETSPI/CLRSPI of SPI 0x%x show in GICD_ISPENDR", probe);
}
