//! The glyph atlas: one premultiplied RGBA8 texture caching display-list masks by `Mask::id`
//! (coverage masks as (a, a, a, a), colour emoji as they are), shelf-packed with a 1-px zero
//! border around each mask (so bilinear sampling never bleeds in a neighbour).
//!
//! The atlas is only a cache: masks are re-sent every frame. When a frame's masks do not fit,
//! the compositor waits for every in-flight frame, clears the atlas and re-packs what this frame
//! needs (growing the texture up to the maximum size when one frame alone needs more).

use std::collections::HashMap;
use std::sync::Arc;

use ash::vk;

use super::context::Gpu;
use super::error::GpuError;
use super::resources::Image;

/// Padding on each side of a mask, in texels.
pub(crate) const PADDING: u32 = 1;

#[derive(Debug, Clone, Copy)]
struct Shelf {
    y: u32,
    height: u32,
    used_width: u32,
}

/// Shelf (row) packing of rectangles into a square.
#[derive(Debug, Clone)]
pub(crate) struct ShelfPacker {
    size: u32,
    shelves: Vec<Shelf>,
    next_y: u32,
}

impl ShelfPacker {
    pub(crate) fn new(size: u32) -> Self {
        ShelfPacker {
            size,
            shelves: Vec::new(),
            next_y: 0,
        }
    }

    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    pub(crate) fn clear(&mut self) {
        self.shelves.clear();
        self.next_y = 0;
    }

    /// Top-left corner of a free `w`×`h` region, or None when full.
    pub(crate) fn allocate(&mut self, w: u32, h: u32) -> Option<(u32, u32)> {
        if w == 0 || h == 0 || w > self.size || h > self.size {
            return None;
        }
        // Best fit: the shelf wasting the least height that still has room.
        let best = self
            .shelves
            .iter_mut()
            .filter(|s| s.height >= h && self.size - s.used_width >= w)
            .min_by_key(|s| s.height - h);
        if let Some(shelf) = best {
            // Do not let tiny glyphs squat on very tall shelves when a new shelf fits.
            if shelf.height <= h.saturating_mul(2) || self.size - self.next_y < h {
                let x = shelf.used_width;
                shelf.used_width += w;
                return Some((x, shelf.y));
            }
        }
        if self.size - self.next_y >= h {
            let y = self.next_y;
            self.next_y += h;
            self.shelves.push(Shelf {
                y,
                height: h,
                used_width: w,
            });
            return Some((0, y));
        }
        None
    }
}

/// Where a mask lives in the atlas (texels of the mask itself, without padding).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AtlasEntry {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl AtlasEntry {
    /// Normalised (u0, v0, u1, v1) of the mask in an atlas of `size`².
    pub(crate) fn uv_rect(&self, size: u32) -> [f32; 4] {
        let s = size as f32;
        [
            self.x as f32 / s,
            self.y as f32 / s,
            (self.x + self.width) as f32 / s,
            (self.y + self.height) as f32 / s,
        ]
    }
}

/// The texture plus what is currently packed in it.
pub(crate) struct GlyphAtlas {
    pub(crate) image: Image,
    packer: ShelfPacker,
    entries: HashMap<u64, AtlasEntry>,
    /// True until the image has been cleared and moved to SHADER_READ_ONLY_OPTIMAL.
    pub(crate) needs_init: bool,
}

impl GlyphAtlas {
    pub(crate) fn new(gpu: &Arc<Gpu>, size: u32) -> Result<Self, GpuError> {
        let image = Image::new(
            gpu,
            size,
            size,
            vk::Format::R8G8B8A8_UNORM,
            vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST,
            "glyph atlas",
        )?;
        Ok(GlyphAtlas {
            image,
            packer: ShelfPacker::new(size),
            entries: HashMap::new(),
            needs_init: true,
        })
    }

    pub(crate) fn size(&self) -> u32 {
        self.packer.size()
    }

    pub(crate) fn get(&self, id: u64) -> Option<AtlasEntry> {
        self.entries.get(&id).copied()
    }

    /// Reserves room for a `width`×`height` mask (plus padding); None when the atlas is full.
    pub(crate) fn insert(&mut self, id: u64, width: u32, height: u32) -> Option<AtlasEntry> {
        let (x, y) = self
            .packer
            .allocate(width + 2 * PADDING, height + 2 * PADDING)?;
        let entry = AtlasEntry {
            x: x + PADDING,
            y: y + PADDING,
            width,
            height,
        };
        self.entries.insert(id, entry);
        Some(entry)
    }

    /// Forgets every mask. Only call when no in-flight frame samples the atlas any more.
    pub(crate) fn clear(&mut self) {
        self.packer.clear();
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: (u32, u32, u32, u32), b: (u32, u32, u32, u32)) -> bool {
        a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
    }

    #[test]
    fn packed_rectangles_never_overlap_and_stay_inside() {
        let mut packer = ShelfPacker::new(128);
        let mut placed = Vec::new();
        let sizes = [
            (10, 12),
            (30, 8),
            (7, 7),
            (50, 20),
            (12, 12),
            (64, 9),
            (3, 30),
        ];
        for round in 0..6 {
            for &(w, h) in &sizes {
                let (w, h) = (w + round, h);
                if let Some((x, y)) = packer.allocate(w, h) {
                    assert!(
                        x + w <= 128 && y + h <= 128,
                        "({x},{y}) {w}x{h} out of bounds"
                    );
                    for &other in &placed {
                        assert!(
                            !overlaps((x, y, w, h), other),
                            "{:?} overlaps {:?}",
                            (x, y, w, h),
                            other
                        );
                    }
                    placed.push((x, y, w, h));
                }
            }
        }
        assert!(placed.len() > 20, "only {} placed", placed.len());
    }

    #[test]
    fn full_packer_refuses_then_accepts_after_clear() {
        let mut packer = ShelfPacker::new(16);
        assert_eq!(packer.allocate(16, 16), Some((0, 0)));
        assert_eq!(packer.allocate(1, 1), None);
        assert_eq!(packer.allocate(17, 1), None);
        packer.clear();
        assert_eq!(packer.allocate(8, 8), Some((0, 0)));
        assert_eq!(packer.allocate(8, 8), Some((8, 0)));
        assert_eq!(packer.allocate(8, 8), Some((0, 8)));
    }

    #[test]
    fn entry_uv_rect_excludes_padding() {
        let e = AtlasEntry {
            x: 1,
            y: 1,
            width: 8,
            height: 4,
        };
        assert_eq!(
            e.uv_rect(16),
            [1.0 / 16.0, 1.0 / 16.0, 9.0 / 16.0, 5.0 / 16.0]
        );
    }
}
