export const ASSETS_DIR: string;
export function vendorAssets(): void;
