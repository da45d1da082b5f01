/** The schema of our own media price catalog (shared/catalog/media.json). */
import { z } from 'zod';

const decimal = z.string().regex(/^\d+(\.\d+)?$/, 'a price is a decimal string like "0.04"');

export const mediaPriceSchema = z.object({
  unit: z.enum(['image', 'megapixel', 'second', 'request']),
  price: decimal,
  firstUnit: z.object({ quantity: z.number().positive(), price: decimal }).optional(),
  roundUp: z.boolean().optional(),
  /** fal counts a megapixel as 1024x1024 pixels; the default is 1,000,000. */
  pixelsPerMegapixel: z.number().int().positive().optional(),
  /**
   * Per megapixel of each INPUT image (edit endpoints that bill reference images). Input sizes are
   * not in the request (URLs), so each input image counts at its 1 MP minimum: a lower bound.
   */
  inputMegapixel: decimal.optional(),
  when: z.object({
    quality: z.string().optional(),
    size: z.string().optional(),
    resolution: z.string().optional(),
    audio: z.boolean().optional(),
  }).optional(),
  label: z.string().optional(),
  /**
   * What a `second` counts: the output's length (video, the default) or `runtime`, the hardware run
   * time the provider reports (Replicate `metrics.predict_time`) for models billed by hardware time.
   */
  basis: z.enum(['output', 'runtime']).optional(),
  /** The hardware a `runtime` price is for (e.g. "Nvidia A100 (40GB) GPU"). */
  hardware: z.string().optional(),
});

export const mediaEntrySchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  vendor: z.string().min(1),
  kind: z.enum(['image', 'video', 'upscale', 'audio']),
  route: z.string().min(1),
  routeModelIds: z.array(z.string().min(1)),
  prices: z.array(mediaPriceSchema).min(1),
  sourceUrl: z.string().url(),
  asOf: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  notes: z.string().optional(),
});

export const mediaCatalogSchema = z.object({
  catalog: z.literal('tollgate-media'),
  version: z.string().min(1),
  entries: z.array(mediaEntrySchema),
});

export type MediaPrice = z.infer<typeof mediaPriceSchema>;
export type MediaEntry = z.infer<typeof mediaEntrySchema>;
export type MediaCatalogFile = z.infer<typeof mediaCatalogSchema>;
